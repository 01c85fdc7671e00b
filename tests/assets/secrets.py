"""A corpus of fake secrets, each planted in a real Claude Code transcript line.

`CORPUS` holds one `SecretCase` per format (more than 100): the secret, the expected redaction
kind and a JSONL line in which it sits inside an assistant text block, a Bash `tool_use` command
or a `tool_result`. Other tests (database bytes, exports, hooks, MCP, training files) reuse it:
after `redact()` no case's secret, nor any 12-character piece of a long one, may remain.

Every value is built at import time from a seeded RNG, so this file holds no literal token.
Real lines come from ../shared/data/claude_sessions; without it, small built-in lines stand in
(`REAL_LINES` says which).
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "claude_sessions"
PIECE = 12  # a long secret must not survive even in pieces of this many characters

_UP = string.ascii_uppercase
_LO = string.ascii_lowercase
_DIG = string.digits
_ALNUM = _UP + _LO + _DIG
_URLSAFE = _ALNUM + "-_"
_HEX = "0123456789abcdef"
_B64 = _ALNUM + "+/"
_BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"


@dataclass(frozen=True)
class SecretCase:
    """One planted secret. `context` is the text around it (`{}` marks the secret); `carrier`
    says which field of `jsonl_line` holds it: "text", "tool_use" or "tool_result"."""

    name: str
    kind: str
    secret: str
    context: str
    carrier: str
    jsonl_line: str

    @property
    def text(self) -> str:
        """The context with the secret in place: what a field of the line contains."""
        return self.context.replace("{}", self.secret)

    def pieces(self) -> list[str]:
        """What must be gone after redaction: the secret, or every 12-char piece of it."""
        s = self.secret
        if len(s) <= PIECE:
            return [s]
        return [s[i : i + PIECE] for i in range(len(s) - PIECE + 1)]

    def leaked(self, redacted: str) -> list[str]:
        """The pieces of the secret still present in `redacted`."""
        return [p for p in self.pieces() if p in redacted]


def _pem(label: str, rng: random.Random, escaped: bool = False) -> str:
    nl = "\\n" if escaped else "\n"
    lines = ["".join(rng.choice(_B64) for _ in range(64)) for _ in range(6)]
    return nl.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _formats(seed: int = 20240601) -> list[tuple[str, str, str, str]]:
    """(name, kind, secret, context) for every format; values are random but reproducible."""
    rng = random.Random(seed)

    def r(n: int, alphabet: str = _ALNUM) -> str:
        out = "".join(rng.choice(alphabet) for _ in range(n))
        # keep mixed-alphabet bodies realistic: at least one digit, upper and lower letter
        if alphabet in (_ALNUM, _URLSAFE, _B64) and n >= 6:
            out = rng.choice(_DIG) + rng.choice(_UP) + rng.choice(_LO) + out[3:]
        return out

    d = lambda n: str(rng.randint(1, 9)) + r(n - 1, _DIG)  # noqa: E731
    jwt = (
        _b64url({"alg": "HS256", "typ": "JWT"})
        + "."
        + _b64url({"sub": d(8), "name": "Lmm Tester", "iat": 1716239022})
        + "."
        + r(43, _URLSAFE)
    )
    discord_id = d(18)
    discord = base64.b64encode(discord_id.encode()).decode().rstrip("=") + "." + r(6, _URLSAFE)
    basic = base64.b64encode(("deploy:" + r(14)).encode()).decode()
    pw = "Xq9" + r(9) + "!"
    return [
        # ---- AI providers
        ("anthropic-api03", "anthropic", "sk-ant-" + "api03-" + r(93, _URLSAFE) + "AA",
         'client = anthropic.Anthropic(api_key="{}")'),
        ("anthropic-admin01", "anthropic-admin", "sk-ant-" + "admin01-" + r(93, _URLSAFE) + "AA",
         "curl https://api.anthropic.com/v1/organizations/users -H 'x-api-key: {}'"),
        ("openai-legacy", "openai", "sk-" + r(20) + "T3Blbk" + "FJ" + r(20),
         "Use the key {} for the embeddings run."),
        ("openai-project", "openai", "sk-" + "proj-" + r(156, _URLSAFE),
         "OpenAI(api_key='{}').models.list()"),
        ("openai-svcacct", "openai", "sk-" + "svcacct-" + r(120, _URLSAFE),
         "the service account key is {} and it expires in May"),
        ("huggingface", "huggingface", "hf_" + r(34, _UP + _LO),
         "huggingface-cli login --token {}"),
        ("replicate", "replicate", "r8_" + r(37), "REPLICATE_API_TOKEN={}"),
        ("groq", "groq", "gsk_" + r(52), "groq = Groq(api_key={})"),
        ("perplexity", "perplexity", "pplx-" + r(48), "PERPLEXITY_API_KEY: {}"),
        ("xai", "xai", "xai-" + r(80), "xai key {} set in the CI secrets"),
        # ---- clouds
        ("aws-access-key-akia", "aws-access-key", "AKIA" + r(16, _UP + _DIG),
         "aws_access_key_id = {}"),
        ("aws-access-key-asia", "aws-access-key", "ASIA" + r(16, _UP + _DIG),
         '{"AccessKeyId": "{}", "Expiration": "2025-01-01T00:00:00Z"}'),
        ("aws-secret-access-key", "aws-secret-key", r(40, _B64),
         "[default]\naws_secret_access_key = {}\nregion = eu-west-1"),
        ("aws-session-token", "aws-session-token", "FwoGZXIvYXdzE" + r(280, _B64) + "==",
         "export AWS_SESSION_TOKEN={}"),
        ("gcp-service-account", "private-key", _pem("PRIVATE KEY", rng, escaped=True),
         '{"type": "service_account", "project_id": "lmm-dev", "private_key": "{}", '
         '"client_email": "ingest@lmm-dev.iam.gserviceaccount.com"}'),
        ("google-api-key", "google-api-key", "AIza" + r(35, _URLSAFE),
         "https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key={}"),
        ("google-oauth-client-secret", "google-oauth-secret", "GOCSPX-" + r(28, _URLSAFE),
         '"client_secret": "{}",'),
        ("google-oauth-access-token", "google-oauth-token", "ya29." + r(150, _URLSAFE),
         "token: {}"),
        ("azure-storage-connection", "azure-storage-key", r(86, _B64) + "==",
         "DefaultEndpointsProtocol=https;AccountName=lmmstore;AccountKey={};"
         "EndpointSuffix=core.windows.net"),
        ("azure-sas", "azure-sas", r(43, _ALNUM) + "%3D",
         "https://lmmstore.blob.core.windows.net/data/a.csv?sv=2022-11-02&sp=r"
         "&se=2026-01-01T00:00:00Z&spr=https&sig={}"),
        ("digitalocean-pat", "digitalocean", "dop_" + "v1_" + r(64, _HEX), "doctl auth init -t {}"),
        ("digitalocean-oauth", "digitalocean", "doo_" + "v1_" + r(64, _HEX),
         "DIGITALOCEAN_ACCESS_TOKEN={}"),
        ("heroku", "heroku", "HRKU-" + r(60, _URLSAFE), "heroku key {}"),
        ("databricks", "databricks", "dapi" + r(32, _HEX), "DATABRICKS_TOKEN={}"),
        # ---- code hosting and CI
        ("github-pat", "github", "ghp_" + r(36), "git clone https://{}@github.com/lmm/lmm.git"),
        ("github-oauth", "github", "gho_" + r(36), "GITHUB_TOKEN={}"),
        ("github-user-to-server", "github", "ghu_" + r(36), "token {} from the app"),
        ("github-server-to-server", "github", "ghs_" + r(36), "GH_TOKEN: {}"),
        ("github-refresh", "github", "ghr_" + r(76), "refresh with {}"),
        ("github-fine-grained", "github", "github_" + "pat_" + r(22) + "_" + r(59),
         "echo {} | gh auth login --with-token"),
        ("gitlab-pat", "gitlab", "glpat-" + r(20, _URLSAFE), "git remote set-url origin {}"),
        ("gitlab-deploy", "gitlab", "gldt-" + r(20, _URLSAFE), "deploy token {}"),
        ("gitlab-runner", "gitlab", "glrt-" + r(20, _URLSAFE), "gitlab-runner register --token {}"),
        ("gitlab-pipeline-trigger", "gitlab", "glptt-" + r(40, _HEX), "trigger: {}"),
        ("npm", "npm", "npm_" + r(36), "//registry.npmjs.org/:_authToken={}"),
        ("pypi", "pypi", "pypi-" + "AgEIcHlwaS5vcmc" + r(120, _URLSAFE),
         "[pypi]\n  username = __token__\n  password = {}"),
        ("dockerhub", "dockerhub", "dckr_" + "pat_" + r(27, _URLSAFE),
         "docker login -u lmmdev --password-stdin <<< {}"),
        ("sentry-auth-token", "sentry-token",
         "sntrys_" + _b64url({"iat": 1716239022, "url": "https://sentry.io", "org": "lmm"})
         + "_" + r(43, _B64),
         "SENTRY_AUTH_TOKEN={}"),
        # ---- chat and messaging
        ("slack-bot", "slack", "xoxb-" + d(11) + "-" + d(13) + "-" + r(24), "SLACK_BOT_TOKEN={}"),
        ("slack-user", "slack", "xoxp-" + d(11) + "-" + d(11) + "-" + d(12) + "-" + r(32, _HEX),
         "slack token {}"),
        ("slack-app-level", "slack", "xoxa-" + "2-" + d(11) + "-" + r(40), "legacy app token {}"),
        ("slack-config-refresh", "slack", "xoxe-" + "1-" + r(140), "refresh_token = '{}'"),
        ("slack-config-access", "slack", "xoxe." + "xoxp-1-" + r(140), "config token {}"),
        ("slack-app-xapp", "slack",
         "xapp-" + "1-A" + r(10, _UP + _DIG) + "-" + d(13) + "-" + r(64, _HEX),
         "SLACK_APP_TOKEN={}"),
        ("slack-webhook", "slack-webhook",
         "T" + r(8, _UP + _DIG) + "/B" + r(10, _UP + _DIG) + "/" + r(24),
         'curl -X POST https://hooks.slack.com/services/{} -d \'{"text":"deployed"}\''),
        ("discord-webhook", "discord-webhook", d(18) + "/" + r(68, _URLSAFE),
         "WEBHOOK = 'https://discord.com/api/webhooks/{}'"),
        ("discord-bot-token", "discord-bot-token", discord + "." + r(38, _URLSAFE),
         'bot.run("{}")'),
        ("telegram-bot-token", "telegram-bot-token", d(10) + ":AA" + r(33, _URLSAFE),
         "curl https://api.telegram.org/bot{}/getMe"),
        ("twilio-api-key", "twilio", "SK" + r(32, _HEX), "twilio api:core:keys --sid {}"),
        ("sendgrid", "sendgrid", "SG." + r(22, _URLSAFE) + "." + r(43, _URLSAFE),
         "sg = SendGridAPIClient('{}')"),
        ("mailgun", "mailgun", "key-" + r(32, _HEX), "mailgun key {}"),
        ("mailchimp", "mailchimp", r(32, _HEX) + "-us12", "mailchimp.set_config({'api': '{}'})"),
        # ---- payments and SaaS
        ("stripe-secret-live", "stripe", "sk_" + "live_" + r(24), "stripe.api_key = '{}'"),
        ("stripe-restricted-live", "stripe", "rk_" + "live_" + r(24), "restricted key {}"),
        ("stripe-secret-test", "stripe", "sk_" + "test_" + r(24), "STRIPE_KEY={}"),
        ("stripe-webhook-secret", "stripe-webhook-secret", "whsec_" + r(32),
         "endpoint_secret = '{}'"),
        ("shopify-access", "shopify", "shpat_" + r(32, _HEX), "X-Shopify-Access-Token: {}"),
        ("shopify-shared-secret", "shopify", "shpss_" + r(32, _HEX), "shared secret {}"),
        ("shopify-custom-app", "shopify", "shpca_" + r(32, _HEX), "custom app {}"),
        ("atlassian", "atlassian", "ATATT3xFfGF0" + r(170, _URLSAFE) + "=" + r(8, _HEX).upper(),
         "curl -u me@example.com:{} https://lmm.atlassian.net/rest/api/3/myself"),
        ("linear", "linear", "lin_" + "api_" + r(40), "LINEAR_API_KEY={}"),
        ("notion-secret", "notion", "secret_" + r(43), "notion = Client(auth='{}')"),
        ("notion-ntn", "notion", "ntn_" + r(46), "Notion token {}"),
        ("newrelic", "newrelic", "NRAK-" + r(27, _UP + _DIG), "NEW_RELIC_API_KEY={}"),
        ("sentry-dsn", "sentry-dsn", r(32, _HEX),
         'sentry_sdk.init(dsn="https://{}@o450123.ingest.sentry.io/4505123")'),
        ("postman", "postman", "PMAK-" + r(24, _HEX) + "-" + r(34, _HEX), "postman key {}"),
        ("grafana-service-account", "grafana", "glsa_" + r(32) + "_" + r(8, _HEX),
         "GRAFANA_TOKEN={}"),
        ("grafana-cloud", "grafana", "glc_" + _b64url({"o": d(6), "n": "lmm-ci", "k": r(24)}) + "=",
         "grafana cloud {}"),
        ("doppler", "doppler", "dp.st." + "prd." + r(43), "DOPPLER_TOKEN={}"),
        ("vault", "vault", "hvs." + r(90, _URLSAFE), "vault login {}"),
        ("pulumi", "pulumi", "pul-" + r(40, _HEX), "PULUMI_ACCESS_TOKEN={}"),
        # ---- keys and tokens by shape
        ("age-secret-key", "age-secret-key", "AGE-SECRET-" + "KEY-1" + r(58, _BECH32),
         "# created: 2024-05-01\n{}"),
        ("jwt", "jwt", jwt, "Authorization: Bearer {}"),
        ("pem-rsa", "private-key", _pem("RSA PRIVATE KEY", rng), "cat id_rsa\n{}\n"),
        ("pem-ec", "private-key", _pem("EC PRIVATE KEY", rng), "{}"),
        ("pem-openssh", "private-key", _pem("OPENSSH PRIVATE KEY", rng), "~/.ssh/id_ed25519:\n{}"),
        ("pem-dsa", "private-key", _pem("DSA PRIVATE KEY", rng), "key:\n{}\nend"),
        ("pem-pgp", "private-key", _pem("PGP PRIVATE KEY BLOCK", rng), "gpg --export-secret\n{}"),
        ("pem-encrypted", "private-key", _pem("ENCRYPTED PRIVATE KEY", rng), "{}\n"),
        ("pem-escaped-json", "private-key", _pem("RSA PRIVATE KEY", rng, escaped=True),
         '{"key": "{}"}'),
        # ---- secrets known by their context
        ("url-password", "url-password", pw, "DATABASE_URL=postgres://app:{}@db.internal:5432/app"),
        ("url-password-redis", "url-password", r(20), "redis://:{}@cache:6379/0"),
        ("env-password", "password", "hunter2", "DB_PASSWORD={}"),
        ("shell-export-api-key", "api-key", r(32), 'export API_KEY="{}"'),
        ("json-client-secret", "secret", r(40, _URLSAFE),
         '{"client_id": "lmm", "client_secret": "{}"}'),
        ("yaml-password", "password", "s3cr3t", "database:\n  user: app\n  password: {}\n"),
        ("toml-secret-key", "api-key", "django-insecure-" + r(30), 'SECRET_KEY = "{}"'),
        ("python-token", "token", r(40), 'auth_token = "{}"'),
        ("camel-api-key", "api-key", r(39), "const config = { apiKey: '{}' };"),
        ("cli-password-flag", "password", pw + "7", "psql --password={} -h db"),
        ("bearer-header", "auth-header", r(48, _URLSAFE),
         "curl -H 'Authorization: Bearer {}' https://api.example.com/v1/items"),
        ("basic-header", "auth-header", basic, "Authorization: Basic {}"),
        ("curl-user", "password", "Tr0ub4dor" + r(4),
         "curl -u admin:{} https://ci.example.com/api"),
        ("mysql-p", "password", "Pa55" + r(8), "mysql -u root -p'{}' -h 127.0.0.1 app"),
        ("mysql-p-bare", "password", "Pa55" + r(8), "mysqldump -uroot -p{} app > dump.sql"),
        # ---- values that only look like placeholders in part
        ("django-secret-key-symbols", "api-key",
         "django-insecure-" + r(10) + "**" + r(6) + "%(" + r(4) + ")" + r(3) + "{" + r(3) + "}"
         + r(4) + "..." + r(5), "SECRET_KEY={}"),
        ("env-dollar-start", "password", "$" + r(14), "DB_PASSWORD={}"),
        ("env-ampersand-start", "password", "&" + r(15), "REDIS_PASSWORD={}"),
        ("env-braces-inside", "secret", r(10) + "{" + r(6) + "}" + r(6), "API_SECRET={}"),
        ("env-dots-inside", "token", r(12) + "..." + r(10), "AUTH_TOKEN={}"),
        ("env-stars-inside", "password", r(10) + "**" + r(10), "SMTP_PASSWORD={}"),
        # ---- names
        ("env-db-pw", "password", r(16), "DB_PW={}"),
        ("env-passphrase", "password", "correct-horse-" + r(8), "GPG_PASSPHRASE={}"),
        ("yaml-passphrase", "password", r(16), "ssh:\n  key_passphrase: {}\n"),
        ("env-credentials", "secret", r(32), "SERVICE_CREDENTIALS={}"),
        ("laravel-app-key", "api-key", r(43, _B64) + "=", "APP_KEY=base64:{}"),
        ("rails-secret-key-base", "secret", r(128, _HEX), "SECRET_KEY_BASE={}"),
        ("hmac-key", "api-key", r(64, _HEX), "HMAC_KEY={}"),
        ("bearer-lowercase", "auth-header", r(40, _URLSAFE), "authorization: bearer {}"),
        # ---- credential files and command lines
        ("netrc", "password", r(20), "machine api.example.com\n  login octocat\n  password {}"),
        ("netrc-one-line", "password", r(16),
         "machine ftp.example.com login anonymous password {}"),
        ("pgpass", "password", r(20), "cat ~/.pgpass\ndb.internal:5432:app:appuser:{}"),
        ("url-password-slash", "url-password", r(8) + "/" + r(8),
         "DATABASE_URL=postgres://app:{}@db:5432/app"),
        ("kubeconfig-client-key", "private-key",
         base64.b64encode(_pem("RSA PRIVATE KEY", rng).encode()).decode(),
         "users:\n- name: admin\n  user:\n    client-key-data: {}\n"),
        ("docker-login-p", "password", r(16), "docker login -u ci -p {} registry.example.com"),
        ("sshpass-p", "password", r(14), "sshpass -p '{}' ssh deploy@10.0.0.5 uptime"),
        ("gcp-private-key-id", "private-key-id", r(40, _HEX),
         '{"type": "service_account", "private_key_id": "{}", "client_id": "1098"}'),
        ("putty-private-key", "private-key", "\n".join(r(64, _B64) for _ in range(3)),
         "PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nComment: deploy\nPublic-Lines: 2\n"
         "AAAAB3NzaC1yc2EAAAADAQABAAABAQC\nzQ\nPrivate-Lines: 3\n{}\nPrivate-MAC: "
         + r(64, _HEX)),
        # ---- more providers
        ("square-access-token", "square", "sq0atp-" + r(22, _URLSAFE), "SQUARE_TOKEN {}"),
        ("square-oauth-secret", "square", "sq0csp-" + r(43, _URLSAFE), "square secret {}"),
        ("square-production", "square", "EAAA" + r(60, _URLSAFE), "square production {}"),
        ("facebook-eaab", "facebook", "EAAB" + r(180), "fb = GraphAPI({})"),
        ("facebook-eaag", "facebook", "EAAG" + r(150), "graph token {} for the page"),
    ]  # fmt: skip


# ---- carriers: real transcript lines whose text fields receive the secrets

_FALLBACK = {
    "text": {"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "text", "text": "Let me check the configuration first."}]}},
    "tool_use": {"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la"}}]}},
    "tool_result": {"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "total 8\nREADME.md"}]}},
}  # fmt: skip


def _slot(obj: dict[str, Any], carrier: str) -> tuple[dict[str, Any], str] | None:
    """The dict and key whose string value is the carrier's text field, if the line has one."""
    message = obj.get("message")
    blocks = message.get("content") if isinstance(message, dict) else None
    if not isinstance(blocks, list):
        return None
    for b in blocks:
        if not isinstance(b, dict):
            continue
        if carrier == "text" and b.get("type") == "text" and isinstance(b.get("text"), str):
            return b, "text"
        if carrier == "tool_use" and b.get("type") == "tool_use" and b.get("name") == "Bash":
            inp = b.get("input")
            if isinstance(inp, dict) and isinstance(inp.get("command"), str):
                return inp, "command"
        tool_result = carrier == "tool_result" and b.get("type") == "tool_result"
        if tool_result and isinstance(b.get("content"), str):
            return b, "content"
    return None


def real_lines() -> Iterator[str]:
    """Every line of the shared Claude Code transcripts (none when the data is absent)."""
    for path in sorted(DATA.rglob("*.jsonl")) if DATA.is_dir() else []:
        yield from path.read_text(encoding="utf-8", errors="replace").splitlines()


def carriers(limit: int = 8) -> dict[str, list[dict[str, Any]]]:
    """Up to `limit` parsed real lines per carrier whose text field redacts to itself."""
    from lmm.text.redact import redact

    found: dict[str, list[dict[str, Any]]] = {c: [] for c in _FALLBACK}
    for line in real_lines():
        if all(len(v) >= limit for v in found.values()):
            break
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        for carrier, got in found.items():
            slot = _slot(obj, carrier)
            value = slot[0][slot[1]] if slot else ""
            if len(got) < limit and 20 <= len(value) <= 4000 and redact(value) == value:
                got.append(obj)
    return found


def build_corpus(seed: int = 20240601) -> list[SecretCase]:
    """Plant every format in a carrier line, cycling through text, tool_use and tool_result."""
    pools = carriers()
    if not all(pools.values()):
        pools = {c: [obj] for c, obj in _FALLBACK.items()}
    names = list(_FALLBACK)
    cases = []
    for i, (name, kind, secret, context) in enumerate(_formats(seed)):
        carrier = names[i % len(names)]
        pool = pools[carrier]
        obj = json.loads(json.dumps(pool[(i // len(names)) % len(pool)]))
        target, key = _slot(obj, carrier)  # type: ignore[misc]
        text = context.replace("{}", secret)
        old = target[key]
        cut = old.rfind("\n", 0, len(old) // 2) + 1
        target[key] = f"{old[:cut]}{text}\n{old[cut:]}"
        line = json.dumps(obj, ensure_ascii=False)
        cases.append(SecretCase(name, kind, secret, context, carrier, line))
    return cases


def strings(value: Any) -> Iterator[str]:
    """Every string inside a decoded JSON value: the texts the store would redact."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def transcript_texts() -> Iterator[str]:
    """The texts the store redacts, from the shared transcripts: text and thinking blocks, tool
    inputs as JSON and tool results. The benchmark input."""
    for line in real_lines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        message = obj.get("message") if isinstance(obj, dict) else None
        blocks = message.get("content") if isinstance(message, dict) else None
        if isinstance(blocks, str):
            yield blocks
        for b in blocks if isinstance(blocks, list) else []:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "tool_use":
                yield json.dumps(b.get("input", {}), ensure_ascii=False)
            elif b.get("type") in ("text", "thinking", "tool_result"):
                yield from strings(b.get("text") or b.get("thinking") or b.get("content") or "")


REAL_LINES = DATA.is_dir()
CORPUS: list[SecretCase] = build_corpus()
