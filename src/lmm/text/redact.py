"""Secrets out before anything is stored."""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

PRIVATE = "private"
Span = tuple[str, int, int]
_MARKS = ("[REDACTED:", "[PRIVATE]")
_MARK = re.compile(r"\[(?:REDACTED:[a-z0-9-]+\]|PRIVATE\])")
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_URLSAFE = _ALNUM | frozenset("_-")
RESULT_HEAD = 2000  # chars of a long tool result kept in Turn.text before the cut ...
RESULT_TAIL = 1000  # ... and after it
_BOUNDARIES = " \n\t\"',;"  # where a long text may be cut without splitting a token (or secret)
_REACH = 16_384  # how far around a cut a secret that crosses it is looked for (a PEM key fits)
_DIGITS = frozenset("0123456789")
_NAME_CHARS = _URLSAFE | frozenset(".")


_DIGIT = re.compile(r"[0-9]").search
_LETTER = re.compile(r"[A-Za-z]").search
_UPPER = re.compile(r"[A-Z]").search
_LOWER = re.compile(r"[a-z]").search


def _has_digit(tok: str) -> bool:
    return _DIGIT(tok) is not None


def _has_digit_and_letter(tok: str) -> bool:
    return _DIGIT(tok) is not None and _LETTER(tok) is not None


def _mixed_case(tok: str) -> bool:
    return _UPPER(tok) is not None and _LOWER(tok) is not None


def _discord_id(tok: str) -> bool:
    """A Discord bot token opens with a user id (digits) in base64."""
    head = tok.split(".", 1)[0]
    if not 23 <= len(head) <= 28 or head[0] not in "MNO":
        return False
    try:
        return base64.b64decode(head + "=" * (-len(head) % 4)).isdigit()
    except (binascii.Error, ValueError):
        return False


def _starts_word(text: str, i: int) -> bool:
    """No letter or digit before `i`, except the n/t/r of a JSON escape such as `\\n`."""
    if i == 0 or text[i - 1] not in _ALNUM:
        return True
    return text[i - 1] in "ntr" and text[i - 2 : i - 1] == "\\"


@dataclass(frozen=True)
class _Rule:
    """One format. Its regex is `anchor` + `pattern`; lookbehinds inside check the part before the
    anchor, whose length is `back` (or a charset to scan back over). `check` rejects look-alikes;
    `handler`, when set, turns the match into spans itself (formats known by context)."""

    kind: str
    anchor: str
    pattern: str
    back: int | frozenset[str] = 0
    check: Callable[[str], bool] | None = None
    bounded: bool = True  # the token must not follow a letter or digit
    handler: Callable[[str, re.Match[str]], list[Span]] | None = None
    gate: str = ""  # a lookahead shared by neighbouring rules, evaluated once per anchor hit


def _token(rule: _Rule, text: str, m: re.Match[str]) -> list[Span]:
    start = m.start()
    if isinstance(rule.back, int):
        start -= rule.back
    else:
        while start > 0 and text[start - 1] in rule.back and m.start() - start < 512:
            start -= 1
    if start < 0 or (rule.bounded and not _starts_word(text, start)):
        return []
    if rule.check is not None and not rule.check(text[start : m.end()]):
        return []
    return [(rule.kind, start, m.end())]


# ---- secrets known by their context: NAME = value, URLs, headers, command lines
# an assignment counts when the name ENDS with one of these (`token_count`, `max_tokens` do not)
_NAME_ENDS = ("password", "passwd", "passphrase", "pwd", "pass", "_pw", "-pw", "secret", "token",
              "auth", "key", "key_base", "credentials")  # fmt: skip
_KEY_OWNERS = ("api", "access", "secret", "private", "signing", "encryption", "master", "client")
_KEY_WORDS = frozenset(("app", "hmac", "jwt", "cookie", "session", "license"))  # whole words
_STEMS = ("pass", "pwd", "secret", "token", "key", "auth", "cred")
_STOP = frozenset(
    """none null nil true false yes no undefined str string int bytes bool optional any secretstr
    required redacted hidden empty env default unknown object dict list value example placeholder
    dummy changeme password passwd pass pwd secret token key apikey api_key user username
    """.split()  # noqa: SIM905
)
_VALUE = re.compile(
    r"[ \t]*(?:(?P<q>\\*[\"'])|(?P<bare>[^\s\"'`,;()\[\]{}<>\\]{1,1024}))", re.ASCII
)
_IDENT = re.compile(r"[A-Za-z_][\w.]*", re.ASCII)
_B64 = re.compile(r"[A-Za-z0-9+/]{20,1024}={0,2}", re.ASCII)
_SYMBOL = re.compile(r"[!@#$%^&*+/=?~]").search
# quoted values that are words, constant names or special tokens, not secrets
_WORDISH = re.compile(r"[A-Za-z_][\w./:-]*", re.ASCII)
_SPECIAL_TOKEN = re.compile(r".?[\[\]<>|].{0,20}[\[\]<>|]|#[0-9A-Fa-f]{3,8}")  # `[UNK]`, colour
# the last three letters of a name in _NAME_ENDS, in any case: a cheap first filter. Grouped by
# their first letter, each alternative opens with a character class that `re` tests at once
_TRI = (
    "(?:[aA](?:[sS][sSeE]|[lL][sS])|[kK][eE][nNyY]|[oO][rR][dD]|[sSpP][wW][dD]|[rR][eE][tT]"
    "|[uU][tT][hH]|_[pP][wW])"
)
# `re` needs a fixed-width lookbehind: `..TRI=`, `.TRI"=`, `TRI" =` and `TRI\\"=` are all six wide
_NAME_END = (
    rf"(?<=(?s:..){_TRI}{{sep}}|(?s:.){_TRI}[\"' ]{{sep}}|{_TRI}(?:[\"'][\"' ]|\\\"){{sep}})"
)
# one character class first, shared by a separator's lookbehind rules: most separators stop here
_SEP_GATE = r"(?<=[dDtTnNyYhHsSg\"' ]{sep})"
# unquoted names ending in e or w (`*_PASSPHRASE=`, `SECRET_KEY_BASE=`, `DB_PW=`) behind their own
# gate, so that the many `type:` and `name=` do not try every name above
_NAME_END_EW = r"(?<=(?s:..)(?:[aA][sS][eE]|_[pP][wW]){sep})"
_SEP_GATE_EW = r"(?<=[eEwW]{sep})"


def _looks_secret(value: str) -> bool:
    """A bare value that is not a plain word: `s3cr3t`, `hunter2`, `p@ss!`, long mixed case."""
    if len(value) < 6:
        return False
    return (
        _has_digit_and_letter(value)
        or _SYMBOL(value) is not None
        or (len(value) >= 16 and _mixed_case(value))
    )


def _literal(text: str, at: int, shell: bool) -> tuple[int, int] | None:
    """The literal value assigned at `at`, or None for code (`input()`, `os.environ[...]`, a
    variable, a type, a constant's name) and placeholders. `shell`: a `NAME=value` with no spaces
    (.env, shell, query string) where a plain word counts, unless it is a keyword argument."""
    m = _VALUE.match(text, at)
    if m is None:
        return None
    if m["q"] is not None:
        start = m.end()
        end = text.find(m["q"].lstrip("\\"), start, start + 2048)
        if end < 0:
            return None
        value = text[start:end].rstrip("\\")
        if len(value) < 3 or "\n" in value or "${" in value or "{{" in value:
            return None
        code = not shell or text[end + 1 : end + 2] in (",", ")")
        if code and not _has_digit(value) and (_WORDISH.fullmatch(value) or " " in value):
            return None  # `X_TOKEN = "receive_message"`, `unk_token="[UNK]"`, a label
        if (value.isdigit() and len(value) < 6) or _SPECIAL_TOKEN.fullmatch(value):
            return None
    else:
        start, end = m.start("bare"), m.end("bare")
        value = text[start:end]
        nxt = text[end : end + 1]
        if nxt and nxt in "(){}[]<>" and value[0] not in "$/~.=>":
            word = _WORD_AFTER.match(text, start)
            stop = word.end() if word is not None else end
            if "[" in text[end:stop]:  # never into an earlier marker: redacting twice adds nothing
                stop = min((i for m in _MARKS if (i := text.find(m, end, stop)) >= 0), default=stop)
            if stop > end and not _CODE.fullmatch(text[start:stop]):
                end = stop
                value, nxt = text[start:end], text[end : end + 1]
        if nxt in ("(", "[") or (value.isdigit() and len(value) < 6) or value[0] in "/~.=>":
            return None
        if _IDENT.fullmatch(value) and ("." in value or any(s in value.lower() for s in _STEMS)):
            return None
        if shell and (nxt in (",", ")") or len(value) < 4):
            return None
        if not shell and not _looks_secret(value):
            return None
        if value.startswith("base64:"):  # Laravel's `APP_KEY=base64:...`: the key follows
            start, value = start + 7, value[7:]
    if _placeholder(value):
        return None
    return start, start + len(value)


# What a placeholder looks like, as a whole value: `$VAR` (a name, not mixed case with digits),
# `${VAR}`, `${VAR:-}` (a default that looks secret is one), `$(command)`; a value that is only
# templates (`{token}`, `{{ x }}`, `%(name)s`, `%s`, `%VAR%`, `<your key>`) around a short plain
# rest; a mask at an end (`sk-...`, `hf_***`, `****1234`, `xxxx-xxxx`); the next query parameter
# (`&next=`: the value was empty).
_SHELL_VAR = re.compile(r"\$(?:[A-Za-z_]\w*|\{[A-Za-z_]\w*(?::?[-=?+](?P<default>[^}]*))?\})")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}|\{[^{}]*\}|%\(\w+\)[a-z]|%[sdr]|%[A-Za-z_]\w*%|<[^<>]*>")
_TEMPLATE_REST = re.compile(r"[\w./:@-]{0,16}", re.ASCII)
_MASKED = re.compile(
    r"[\w/+=-]{0,16}(?:\*{3,}|\.{3,}|\u2026|[xX]{4,})[A-Za-z0-9]{0,4}"
    r"|(?:\*{3,}|[xX]{4,})(?:[-_ ]?(?:\*{3,}|[xX]{4,}|[0-9]{4}))*",
    re.ASCII,
)
_NEXT_PARAM = re.compile(r"&[\w.-]*=")


def _placeholder(value: str) -> bool:
    """Whether `value` is plausibly a placeholder, not a secret: see `_SHELL_VAR` above."""
    if value.lower() in _STOP or value.startswith(_MARKS) or value.startswith("$("):
        return True
    if (v := _SHELL_VAR.fullmatch(value)) is not None:  # `$Xk9pw2zz` reads as a password
        plain = not (_has_digit(value) and _mixed_case(value))
        return plain and not (v["default"] and _looks_secret(v["default"]))
    if _MASKED.fullmatch(value) or _NEXT_PARAM.match(value):
        return True
    rest = _TEMPLATE.sub("", value)
    plain = not (_has_digit(rest) and _mixed_case(rest))  # `sk-{key}`, not `2ZbOe{x}Hz9`
    return rest != value and plain and _TEMPLATE_REST.fullmatch(rest) is not None


# a bare value that stopped at a bracket goes on to the end of its word unless it is code:
# `get_pw(x)`, `tokens[0]`, `pw),` (a keyword argument)
_WORD_AFTER = re.compile(r"[^\s\"'`\\]{0,1024}", re.ASCII)
_CODE = re.compile(r"[\w.]+(?:\(.*\)|\[.*\])?[),;\]}]*", re.ASCII)


def _assignment_kind(name: str) -> str | None:
    end = next((e for e in _NAME_ENDS if name.endswith(e)), None)
    if end is None:
        return None
    if end == "key":
        if name.endswith(("accountkey", "sharedaccesskey")):
            return "azure-storage-key"
        owner = name[:-3]
        if not any(o in owner for o in _KEY_OWNERS) and not _KEY_WORDS.intersection(
            owner.replace("-", "_").replace(".", "_").split("_")
        ):
            return None
        if "secret" in name and ("aws" in name or "secretaccess" in name.replace("_", "")):
            return "aws-secret-key"
        return "api-key"
    if end in ("password", "passwd", "passphrase", "pwd", "pass", "_pw", "-pw"):
        return "password"
    if end in ("key_base", "credentials"):
        return "secret"
    if end == "token" and "aws" in name and "session" in name:
        return "aws-session-token"
    return "secret" if end == "secret" else "token"


def _escaped(text: str, start: int) -> int:
    """1 where the name at `start` begins with the n, r or t of a JSON escape (`\\nNAME=`)."""
    return int(start > 0 and text[start - 1] == "\\" and text[start : start + 1] in ("n", "r", "t"))


def _assignment(text: str, m: re.Match[str]) -> list[Span]:
    """`NAME=value`, `NAME = "value"`, `NAME: value`, `"NAME": "value"` (also JSON-escaped) where
    NAME ends with a secret word; `m` starts at the separator."""
    sep = m.start()
    nxt = text[sep + 1 : sep + 2]
    if text[sep] == "=" and nxt in ("=", "~"):  # a comparison
        return []
    at = sep + 1 + (nxt in (">", "=") and text[sep] in ":=")  # => and :=
    end = sep
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    spaced = end < sep
    while end > 0 and text[end - 1] in "\"'\\":
        end -= 1
    start = end
    while start > 0 and text[start - 1] in _NAME_CHARS and end - start < 64:
        start -= 1
    start += _escaped(text, start)
    name = text[start:end].lower()
    kind = _assignment_kind(name)
    if kind is None:
        return []
    if kind == "azure-storage-key":
        v = _B64.match(text, at)
        return [(kind, at, v.end())] if v else []
    shell = text[sep] == "=" and not spaced and text[at : at + 1] not in (" ", "\t")
    span = _literal(text, at, shell)
    return [(kind, *span)] if span else []


def _flag(text: str, m: re.Match[str]) -> list[Span]:
    """`--password secret`: the value follows a space."""
    kind = _assignment_kind(m["flag"].lower())
    span = _literal(text, m.end(), False) if kind else None
    return [(kind, *span)] if kind and span else []


def _url(text: str, m: re.Match[str]) -> list[Span]:
    for group, kind in (
        ("u_pw", "url-password"),
        ("u_sentry", "sentry-dsn"),
        ("u_slack", "slack-webhook"),
        ("u_discord", "discord-webhook"),
    ):
        value = m[group]
        if value is not None:
            if len(value) < 3 or _placeholder(value) or value.lower().startswith(("my", "your")):
                return []
            if group == "u_pw" and "/" in value and not _has_letter_before_slash(value):
                return []  # `//host:8080/path/@user`: a port and a path, not a password
            return [(kind, m.start(group), m.end(group))]
    return []


def _has_letter_before_slash(value: str) -> bool:
    head = value.split("/", 1)[0]
    return bool(head) and not head.isdigit()


_HEADER_GROUPS = tuple(f"h_{kind}{i}" for kind in ("val", "b64") for i in range(3))


def _header(text: str, m: re.Match[str]) -> list[Span]:
    """`Bearer <token>` with a token-like value; `Basic <base64 of user:password>`."""
    group = next(g for g in _HEADER_GROUPS if m[g] is not None)
    value = m[group]
    if group.startswith("h_b64"):
        try:
            ok = b":" in base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            ok = False
    else:
        ok = _has_digit_and_letter(value) or len(value) >= 20
    return [("auth-header", m.start(group), m.end(group))] if ok else []


def _command_password(text: str, m: re.Match[str]) -> list[Span]:
    """`curl -u user:pass`, `mysql -p'pass'`, `docker login -p pass`, `sshpass -p pass`: a
    candidate that `_commanded` keeps only where the command's name comes earlier in the text."""
    for group in ("c_pw", "c_pw2", "m_pw", "m_pw2", "m_pw3", "d_pw", "d_pw2", "d_pw3"):
        value = m[group]
        if value is not None:
            if _placeholder(value) or (value.isdigit() and len(value) < 6):
                return []
            command = {"c": "?curl", "m": "?mysql", "d": "?login"}[group[0]]
            return [(command, m.start(group), m.end(group))]
    return []


def _commanded(text: str, spans: list[Span]) -> list[Span]:
    """Resolve `_command_password` candidates: one search per command word for the whole text."""
    first: dict[str, int] = {}
    for command, words in (
        ("?curl", ("curl",)),
        ("?mysql", ("mysql", "mariadb")),
        ("?login", ("docker login", "podman login", "sshpass")),
    ):
        found = [i for i in (text.find(w) for w in words) if i >= 0]
        first[command] = min(found) if found else len(text)
    return [
        ("password", s, e) if k in first else (k, s, e)
        for k, s, e in spans
        if k not in first or first[k] < s
    ]


def _capture(kind: str, group: str) -> Callable[[str, re.Match[str]], list[Span]]:
    """A handler whose secret is one named group of the match (formats known by context)."""

    def handler(text: str, m: re.Match[str]) -> list[Span]:
        value = m[group]
        if value is None or len(value) < 3 or _placeholder(value):
            return []
        return [(kind, m.start(group), m.end(group))]

    return handler


_HOST_CHARS = _NAME_CHARS | frozenset("*")


def _pgpass(text: str, m: re.Match[str]) -> list[Span]:
    """`host:port:database:user:password` on a line of its own (`~/.pgpass`); `m` starts at the
    colon after the host."""
    start = m.start()
    while start > 0 and text[start - 1] in _HOST_CHARS and m.start() - start < 256:
        start -= 1
    escaped = _escaped(text, start)
    start += escaped
    if start == m.start() or not (escaped or start == 0 or text[start - 1] in "\n \t\"'"):
        return []
    value = m["pg_pw"]
    if (value.isdigit() and len(value) < 6) or len(value) < 3 or _placeholder(value):
        return []
    return [("password", m.start("pg_pw"), m.end("pg_pw"))]


def _jwt(text: str, m: re.Match[str]) -> list[Span]:
    """`m` starts at the dot before the payload; the header (`eyJ...`) is just before it."""
    start = m.start()
    while start > 0 and text[start - 1] in _URLSAFE and m.start() - start < 2048:
        start -= 1
    head = text.find("eyJ", start, m.start())
    if head < 0 or (not _starts_word(text, head) and text[head - 1] != "_"):
        return []
    return [("jwt", head, m.end())]


def _gate(gate: str, *rules: _Rule) -> tuple[_Rule, ...]:
    return tuple(replace(r, gate=gate) for r in rules)


_R = _Rule
_ALNUM20 = r"(?=[A-Za-z0-9]{20})"
_TOKEN20 = r"(?<=[A-Za-z]{2}-)(?=[\w-]{20})"  # prefixes end in letters; UUIDs and dates do not
# a rule with a handler owns its span logic (its kind names the family); order matters within an
# anchor: literal-first alternatives fail in one comparison, so they come before gated groups
_RULES: tuple[_Rule, ...] = (
    # ---- '_'
    _R("dockerhub", "_", r"pat_(?<=dckr_pat_)[\w-]{20,}", 4),
    _R("dockerhub", "_", r"oat_(?<=dckr_oat_)[\w-]{20,}", 4),
    _R("grafana", "_", r"eyJ(?<=glc_eyJ)[\w+/=]{29,}", 3),
    _R("sentry-token", "_", r"eyJ(?<=sntry[su]_eyJ)[\w+/=]{37,}", 6),
    *_gate(
        _ALNUM20,
        _R("github", "_", r"(?<=gh[pousr]_)[A-Za-z0-9]{36,}", 3),
        _R("github", "_", r"(?<=github_pat_)[A-Za-z0-9_]{50,}", 10),
        _R("stripe", "_", r"(?<=[sr]k_(?:live|test)_)[A-Za-z0-9]{20,}", 7),
        _R("stripe-webhook-secret", "_", r"(?<=whsec_)[A-Za-z0-9+/=]{24,}", 5),
        _R("npm", "_", r"(?<=npm_)[A-Za-z0-9]{36}(?![A-Za-z0-9])", 3),
        _R("huggingface", "_", r"(?<=hf_)[A-Za-z0-9]{30,}(?![\w-])", 2, _mixed_case),
        _R("replicate", "_", r"(?<=r8_)[A-Za-z0-9]{37}(?![A-Za-z0-9])", 2),
        _R("groq", "_", r"(?<=gsk_)[A-Za-z0-9]{48,}", 3),
        _R("digitalocean", "_", r"(?<=do[opr]_v1_)[a-f0-9]{64}", 6),
        _R("shopify", "_", r"(?<=shp(?:at|ss|ca|pa)_)[a-fA-F0-9]{32}(?![A-Za-z0-9])", 5),
        _R("linear", "_", r"(?<=lin_api_)[A-Za-z0-9]{40,}", 7),
        _R("notion", "_", r"(?<=secret_)[A-Za-z0-9]{43}(?![\w-])", 6, _has_digit_and_letter),
        _R("notion", "_", r"(?<=ntn_)[A-Za-z0-9]{40,}", 3),
        _R("grafana", "_", r"(?<=glsa_)[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}", 4),
    ),
    # ---- '-'
    _R("anthropic-admin", "-", r"ant-(?<=sk-ant-)admin\d\d-[\w-]{20,}", 2),
    _R("anthropic", "-", r"ant-(?<=sk-ant-)[a-z]{2,6}\d\d-[\w-]{20,}", 2),
    _R("openai", "-", r"proj-(?<=sk-proj-)[\w-]{20,}", 2),
    _R("openai", "-", r"svcacct-(?<=sk-svcacct-)[\w-]{20,}", 2),
    _R("openai", "-", r"admin-(?<=sk-admin-)[\w-]{20,}", 2),
    _R("age-secret-key", "-", r"SECRET-KEY-1(?<=AGE-SECRET-KEY-1)[0-9A-Z]{58}", 3),
    _R("pypi", "-", r"AgE(?<=pypi-AgE)[\w-]{50,}", 4),
    _R("mailchimp", "-", r"us(?<=[0-9a-f]{32}-us)\d{1,2}(?![A-Za-z0-9])", 32),
    _R("private-key", "-",
       r"----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
       # the body: base64 and armour headers (none of _{}[];), never another BEGIN
       r"(?:(?:[^_{}\[\];-]|-(?!----BEGIN ))*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
       r"|(?=(?:\s|\\[rn])*[A-Za-z0-9+/]{40})(?:[A-Za-z0-9+/=\r\n]|\\[rn])*)", bounded=False),
    _R("password", "-", r"-(?P<flag>(?:[a-z]+-){0,4}(?:password|passwd|token|secret|key))"
       r"(?=[ \t]+[^\s-])", handler=_flag),
    _R("slack", "-", r"1-(?<=xapp-1-)[0-9A-Za-z-]{20,}", 4),
    _R("password", "-", r"u(?<=\s-u)[ \t]*\\*[\"']?[^\s:\"'\\\[]+:(?P<c_pw>[^\s\"'\\\[\]]+)",
       handler=_command_password),
    _R("password", "-",
       r"-user(?<=\s--user)[ \t=]*\\*[\"']?[^\s:\"'\\\[]+:(?P<c_pw2>[^\s\"'\\\[\]]+)",
       handler=_command_password),
    _R("password", "-", r"p(?<=\s-p)(?:'(?P<m_pw>[^'\s]+)'|\\?\"(?P<m_pw2>[^\"\s\\]+)\\?\""
       r"|(?P<m_pw3>[^\s'\"\\-][^\s'\"\\]*))", handler=_command_password),
    _R("password", "-", r"p(?<=\s-p)[ \t]+(?:'(?P<d_pw>[^'\s]+)'|\\?\"(?P<d_pw2>[^\"\s\\]+)\\?\""
       r"|(?P<d_pw3>[^\s'\"\\-][^\s'\"\\]*))", handler=_command_password),
    # PuTTY: the lines after `Private-Lines: N`
    _R("private-key", "-", r"Lines:(?<=Private-Lines:)[ \t]*\d+(?:\r?\n|(?:\\r)?\\n)(?P<putty>"
       r"[A-Za-z0-9+/=]{1,128}(?:(?:\r?\n|(?:\\r)?\\n)[A-Za-z0-9+/=]{1,128}(?![\w+/=-])){0,63})",
       handler=_capture("private-key", "putty")),
    *_gate(
        _TOKEN20,
        _R("square", "-", r"(?<=sq0atp-)[\w-]{22}(?![\w-])", 6),
        _R("square", "-", r"(?<=sq0csp-)[\w-]{43}(?![\w-])", 6),
        _R("openai", "-", r"(?<=sk-)[A-Za-z0-9]{32,}(?![\w-])", 2, _has_digit_and_letter),
        _R("gitlab", "-", r"(?<=gl(?:pat|ptt|cbt|oas|imt)-)[\w-]{20,}", 5),
        _R("gitlab", "-", r"(?<=gl(?:dt|rt|ft)-)[\w-]{20,}", 4),
        _R("slack", "-", r"(?<=xox[abposer]-)[0-9A-Za-z-]{20,}", 4),
        _R("perplexity", "-", r"(?<=pplx-)[A-Za-z0-9]{40,}", 4),
        _R("google-oauth-secret", "-", r"(?<=GOCSPX-)[\w-]{24,}", 6),
        _R("newrelic", "-", r"(?<=NR(?:AK|JS|II)-)[A-Z0-9]{27}(?![A-Za-z0-9])", 4),
        _R("postman", "-", r"(?<=PMAK-)[a-f0-9]{24}-[a-f0-9]{34}", 4),
        _R("mailgun", "-", r"(?<=key-)[0-9a-f]{32}(?![A-Za-z0-9])", 3),
        _R("heroku", "-", r"(?<=HRKU-)[\w-]{30,}", 4),
        _R("xai", "-", r"(?<=xai-)[A-Za-z0-9]{70,}", 3),
        _R("pulumi", "-", r"(?<=pul-)[a-f0-9]{40}(?![A-Za-z0-9])", 3),
    ),
    # ---- '.'
    _R("slack", ".", r"xox[bp]-(?<=xoxe\.xox[bp]-)\d-[0-9A-Za-z-]{20,}", 4),
    *(
        _R("doppler", ".", kind + r"\.(?<=dp\." + kind + r"\.)(?:[\w-]{1,40}\.)?\w{40,}", 2)
        for kind in ("st", "pt", "sa", "ct")
    ),
    _R("jwt", ".", r"ey[\w-]{8,}\.[\w-]*", handler=_jwt),
    _R("discord-bot-token", ".", r"[\w-]{6}\.[\w-]{27,40}(?![\w-])", _ALNUM, _discord_id),
    *_gate(
        r"(?<=[sbr9G]\.)(?=[\w-]{20})",  # the last letter of hvs. hvb. hvr. ya29. SG.
        _R("vault", ".", r"(?<=hv[sbr]\.)[\w-]{24,}", 3),
        _R("google-oauth-token", ".", r"(?<=ya29\.)[\w-]{30,}", 4),
        _R("sendgrid", ".", r"(?<=SG\.)[\w-]{16,32}\.[\w-]{30,50}(?![\w-])", 2),
    ),
    # ---- ':' and '=': URLs, headers, assignments (a name's last three letters filter first)
    _R("telegram-bot-token", ":", r"AA(?<=\d{8}:AA)[\w-]{33}(?![\w-])", _DIGITS, bounded=False),
    _R("url-password", ":",
       r"//(?:(?P<u_sentry>[0-9a-f]{32})(?::[0-9a-f]{32})?@[\w.-]*sentry"
       r"|hooks\.slack\.com/(?:services|workflows|triggers)/(?P<u_slack>[\w/+-]{10,})"
       r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/(?P<u_discord>\d+/[\w-]{20,})"
       r"|[^\s:/@\"'<>\\\[\]]{0,128}:(?P<u_pw>[^\s@\"'<>\\\[\]]{1,256})@[\w\[])",
       handler=_url),
    # kubeconfig `client-key-data: <base64 PEM>`, a GCP service account's `"private_key_id"`: each
    # opens with literals, which `re` tests before it tries the lookbehind
    _R("private-key", ":", r" (?P<kube>LS0t(?<=-key-data: LS0t)[A-Za-z0-9+/]{36,}={0,2})",
       handler=_capture("private-key", "kube")),
    _R("private-key", ":", r' "(?P<kube2>LS0t(?<=-data": "LS0t)[A-Za-z0-9+/]{36,}={0,2})',
       handler=_capture("private-key", "kube2")),
    _R("private-key-id", ":", r' "(?<=_key_id": ")(?P<gcp>[0-9a-f]{40})(?![0-9a-f])',
       handler=_capture("private-key-id", "gcp")),
    _R("private-key-id", ":", r'"(?<=_key_id":")(?P<gcp2>[0-9a-f]{40})(?![0-9a-f])',
       handler=_capture("private-key-id", "gcp2")),
    _R("private-key-id", ":", r'\\"(?<=y_id\\":\\")(?P<gcp3>[0-9a-f]{40})(?![0-9a-f])',
       handler=_capture("private-key-id", "gcp3")),
    _R("private-key-id", ":", r' \\"(?<=_id\\": \\")(?P<gcp4>[0-9a-f]{40})(?![0-9a-f])',
       handler=_capture("private-key-id", "gcp4")),
    # `~/.pgpass`: host:port:database:user:password
    _R("password", ":", r"[0-9*][0-9]{0,4}:(?:[^\s:\\\"',;=(){}\[\]<>]+:){2}(?P<pg_pw>[^\s:\\\"']+)"
       r"(?=[ \t]*(?:\r?\n|\\[rn]|\Z|\\?[\"']))", handler=_pgpass),
    # `Authorization: Bearer <token>`, `"Authorization": "Basic <base64>"`
    *(
        _R("auth-header", ":", q + rf"[Bb]earer[ \t]+(?P<h_val{i}>[\w.~+/-]{{8,}}=*)",
           handler=_header)
        for i, q in enumerate((" ", ' "', ' \\"'))
    ),
    *(
        _R("auth-header", ":", q + rf"[Bb]asic[ \t]+(?P<h_b64{i}>[A-Za-z0-9+/]{{8,}}={{0,2}})",
           handler=_header)
        for i, q in enumerate((" ", ' "', ' \\"'))
    ),
    *_gate(
        _SEP_GATE.format(sep=":"),
        _R("password", ":", _NAME_END.format(sep=":"), handler=_assignment),
    ),
    *_gate(
        _SEP_GATE_EW.format(sep=":"),
        _R("password", ":", _NAME_END_EW.format(sep=":"), handler=_assignment),
    ),
    *_gate(
        _SEP_GATE.format(sep="="),
        _R("azure-sas", "=", r"(?<=[?&;]sig=)[A-Za-z0-9%+/=]{16,}", -1, bounded=False),
        _R("password", "=", _NAME_END.format(sep="="), handler=_assignment),
    ),
    *_gate(
        _SEP_GATE_EW.format(sep="="),
        _R("password", "=", _NAME_END_EW.format(sep="="), handler=_assignment),
    ),
    # ---- rare capitals
    _R("aws-access-key", "A", r"(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    _R("google-api-key", "A", r"Iza[\w-]{35}(?![\w-])"),
    _R("atlassian", "A", r"TATT3[\w=-]{60,}"),
    _R("square", "A", r"A(?<=EAA)A[\w-]{60,}(?![\w-])", 1),
    _R("facebook", "A", r"A(?<=EAA)[B-Z][A-Za-z0-9]{90,}(?![A-Za-z0-9])", 1, _mixed_case),
    # ---- no separator, a prefix that starts with a common letter
    _R("twilio", "SK", r"[0-9a-fA-F]{32}(?![0-9A-Za-z])", 0, _has_digit_and_letter),
    _R("databricks", "dapi", r"[a-f0-9]{32}(?:-\d+)?(?![A-Za-z0-9])"),
    # ---- ~/.netrc: machine <host> [login <user>] password <password>
    _R("password", "machine",
       r"[ \t]+[^\s\\\"']+(?:(?:\s|\\[nrt])+(?:login|account|port)[ \t]+[^\s\\\"']+){0,3}"
       r"(?:\s|\\[nrt])+password[ \t]+(?P<netrc>[^\s\\\"']+)",
       handler=_capture("password", "netrc")),
    # ---- user-marked spans: an unclosed <private> runs to the end of the text
    _R(PRIVATE, "<", r"(?i:private)[ \t]*>[\s\S]*?(?:<[ \t]*/[ \t]*(?i:private)[ \t]*>|\Z)",
       bounded=False),
)  # fmt: skip


@dataclass(frozen=True)
class _Pass:
    """All rules of one anchor as one regex, compiled for str and for UTF-8 bytes."""

    anchor: str
    source: str  # the regex; it starts with the anchor
    search: Callable[[str, int], re.Match[str] | None]
    search_bytes: Callable[[bytes, int], re.Match[bytes] | None]
    match: Callable[[str, int], re.Match[str] | None]
    needs: str  # what the text must hold for the pass to run: its anchor's last character, or
    also: str  # for a word anchor, the word (and netrc's `password`); a memchr or substring test


def _alternatives(rules: list[tuple[int, _Rule]]) -> str:
    """The alternatives of one anchor's regex. At each anchor hit `re` tries them in turn, and
    one that opens with a literal costs a single comparison: so rules are grouped by their first
    character (a trie of depth one), and neighbouring rules with the same gate share it. A rule's
    id is an empty group at the END of its alternative: the last group closed names the rule."""
    groups: list[tuple[str, list[str]]] = []  # (shared prefix, alternatives after it)
    by_char: dict[str, list[str]] = {}
    for i, r in rules:
        alt = f"{r.pattern}(?P<r{i}>)"
        if r.gate:
            if not groups or groups[-1][0] != r.gate:
                groups.append((r.gate, []))
            groups[-1][1].append(alt)
        elif alt[0].isalnum() or alt[0] in " -/'":
            if alt[0] not in by_char:
                by_char[alt[0]] = []
                groups.append((re.escape(alt[0]), by_char[alt[0]]))
            by_char[alt[0]].append(alt[1:])
        else:
            groups.append(("", [alt]))
    return "|".join(prefix + "(?:" + "|".join(alts) + ")" for prefix, alts in groups)


_NEEDS = {"machine": "password"}


def _passes(rules: tuple[_Rule, ...]) -> tuple[_Pass, ...]:
    """One regex per anchor: it starts with that literal, so `re` scans for it at C speed."""
    by_anchor: dict[str, list[tuple[int, _Rule]]] = {}
    for i, r in enumerate(rules):
        by_anchor.setdefault(r.anchor, []).append((i, r))
    out = []
    for anchor, members in by_anchor.items():
        source = re.escape(anchor) + "(?:" + _alternatives(members) + ")"
        compiled = re.compile(source, re.ASCII)
        raw = re.compile(source.encode())
        needs = anchor if len(anchor) > 3 else anchor[-1]
        also = _NEEDS.get(anchor, "")
        out.append(_Pass(anchor, source, compiled.search, raw.search, compiled.match, needs, also))
    return tuple(out)


_PASSES = _passes(_RULES)
# Short texts (most of them) pay per call, not per character: one regex of every pass, whose
# set-of-first-characters scan is slower per character but is called once.
_SHORT = 200
# A pass whose anchor is a word (`dapi`, `machine`) stays out of it: its first letter is common, so
# it would stop the scan often; a substring test decides whether it runs at all.
_WORDS = tuple(p for p in _PASSES if len(p.anchor) > 3)
_ALL = re.compile("|".join(p.source for p in _PASSES if p not in _WORDS), re.ASCII).search
KINDS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [r.kind for r in _RULES]
        + ["secret", "token", "api-key", "aws-secret-key", "aws-session-token", "azure-storage-key"]
        + ["sentry-dsn", "slack-webhook", "discord-webhook"]
    )
)


# rules whose match swallows everything inside it: the scan resumes after them, not inside
_WHOLE = frozenset(f"r{i}" for i, r in enumerate(_RULES) if r.kind in (PRIVATE, "private-key"))


def _next(m: re.Match[str]) -> int:
    return m.end() if m.lastgroup in _WHOLE else m.start() + 1


def _spans(text: str, m: re.Match[str]) -> list[Span]:
    rule = _RULES[int(m.lastgroup[1:])]  # type: ignore[index]
    return rule.handler(text, m) if rule.handler else _token(rule, text, m)


# kinds named after where a value sits, not what it is: a format-specific kind wins a tie
_GENERIC = frozenset(("password", "secret", "token", "api-key", "url-password", "auth-header"))


def find_secrets(text: str) -> list[Span]:
    """Secrets in `text` as `(kind, start, end)`, sorted and non-overlapping (overlaps merge into
    the earlier span's kind); user-marked private spans come as kind `"private"`."""
    # after a hit the scan goes on from the next character, not the end of the match, so that
    # a format inside another one's match (a JWT in a Bearer header) is found whatever the path
    spans: list[Span] = []
    if len(text) < _SHORT:
        m = _ALL(text, 0)
        while m is not None:
            spans += _spans(text, m)
            m = _ALL(text, _next(m))
        for p in _WORDS:
            if p.needs in text and p.also in text:
                m = p.search(text, 0)
                while m is not None:
                    spans += _spans(text, m)
                    m = p.search(text, _next(m))
    elif text.isascii():
        for p in _PASSES:
            if p.needs in text and p.also in text:  # an absent anchor rules the pass out
                m = p.search(text, 0)
                while m is not None:
                    spans += _spans(text, m)
                    m = p.search(text, _next(m))
    else:
        # `re` scans a wide (UCS-2/4) string at half the speed of bytes: scan the UTF-8 bytes,
        # then match the str regex where a hit is (anchors are ASCII, so offsets map cleanly)
        raw = text.encode("utf-8", "surrogatepass")
        for p in _PASSES:
            if p.needs in text and p.also in text:
                at_byte = at_char = 0
                mb = p.search_bytes(raw, 0)
                while mb is not None:
                    at_char += len(raw[at_byte : mb.start()].decode("utf-8", "surrogatepass"))
                    at_byte = mb.start()
                    m = p.match(text, at_char)
                    if m is not None:
                        spans += _spans(text, m)
                    step = mb.end() if mb.lastgroup in _WHOLE else mb.start() + 1
                    mb = p.search_bytes(raw, step)
    if not spans:
        return spans
    if any(k[0] == "?" for k, _, _ in spans):
        spans = _commanded(text, spans)
    spans.sort(key=lambda s: (s[1], s[0] in _GENERIC, -s[2]))
    marks = _marks(text)
    ends = [e for _, e in marks]
    merged: list[Span] = []
    for kind, start, end in spans:
        if marks and _cuts(marks, ends, start, end):
            continue  # never cut into an earlier marker: redacting twice changes nothing
        if merged and start < merged[-1][2]:
            k, s, e = merged[-1]
            merged[-1] = (k, s, max(e, end))
        elif start < end and not text.startswith(_MARKS, start):
            merged.append((kind, start, end))
    return merged


def _cuts(marks: list[tuple[int, int]], ends: list[int], start: int, end: int) -> bool:
    """Whether [start, end) begins or ends strictly inside one of the (sorted) markers."""
    i = bisect.bisect_right(ends, start)  # the first marker that ends after `start`
    while i < len(marks) and marks[i][0] < end:
        s, e = marks[i]
        if s < start or end < e:
            return True
        i += 1
    return False


def _marks(text: str) -> list[tuple[int, int]]:
    """Where earlier `[REDACTED:...]` and `[PRIVATE]` markers are."""
    return [m.span() for m in _MARK.finditer(text)] if "[" in text else []


def redact(text: str) -> str:
    """Return `text` with secrets replaced by `[REDACTED:<kind>]` and private spans by
    `[PRIVATE]`. Idempotent: redacting twice changes nothing more."""
    spans = find_secrets(text) if text else []
    if not spans:
        return text
    out = []
    pos = 0
    for kind, start, end in spans:
        out.append(text[pos:start])
        out.append("[PRIVATE]" if kind == PRIVATE else f"[REDACTED:{kind}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def unmarked(text: str) -> str:
    """`text` with its `[REDACTED:...]` and `[PRIVATE]` markers blanked out: the words around."""
    return _MARK.sub(" ", text) if "[" in text else text


def redact_cut(text: str, limit: int) -> str:
    """`redact(text)` cut to at most `limit` characters, never inside a marker. Redacting before
    cutting is what keeps a secret that straddles the cut from being stored in part."""
    out = redact(text)
    if len(out) <= limit:
        return out
    for s, e in _marks(out):
        if s < limit < e:
            return out[:s]
    return out[:limit]


def clip(text: str, head: int = RESULT_HEAD, tail: int = RESULT_TAIL) -> str:
    """`text` cut to about head + tail chars, at token boundaries and never inside a secret that
    `redact` knows (a token or secret that would be split is dropped whole)."""
    if len(text) <= head + tail + 64:
        return text
    cut = max(text.rfind(c, 0, head) for c in _BOUNDARIES)
    cut = min([max(cut, 0)] + [s for _, s, e in find_secrets(text[: cut + _REACH]) if s < cut < e])
    if tail <= 0:
        return f"{text[:cut]} [... {len(text) - cut} chars omitted ...]"
    found = [i for i in (text.find(c, len(text) - tail) for c in _BOUNDARIES) if i >= 0]
    start = min(found) + 1 if found else len(text)
    at = max(cut, start - _REACH)
    start = max(
        [start] + [at + e for _, s, e in find_secrets(text[at:]) if at + s < start < at + e]
    )
    return f"{text[:cut]}\n[... {start - cut} chars omitted ...]\n{text[start:]}"
