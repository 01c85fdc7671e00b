"""Which words make a user's sentence worth remembering, and as what."""

from __future__ import annotations

import re

from lmm.text import consolidate

# Words that make a statement a standing instruction rather than a request for now.
_STRONG = re.compile(
    r"\b(?:always|never|from now on|going forward|moving forward|henceforth|from here on|"
    r"(?:in|for) (?:the )?future|every time|whenever|by default|(?:i|we) (?:don'?t|do not) want|"
    r"make sure (?:to|you|that|we|all)|ensure (?:that )?(?:you|your|we|to|all|every)|remember to|"
    r"be sure to|don'?t forget|habit|conventions?|standards?|guidelines?|insist|"
    r"consistent(?:ly)? use|even if (?:you|it)|(?:i|we) (?:really )?prefer|prefer \S+ (?:over|to)|"
    r"(?:i|we)(?: want| need| would like|'d like| expect) (?:you )?to (?:always|never|use|keep|"
    r"avoid|adopt|follow|focus|get into|develop|stick|make sure|ensure|remember)|"
    r"focus on (?:the )?use|in general|as a rule|ask me (?:first |before)|pinned|"
    r"keep [\w.-]+(?: [\w.-]+)? (?:at|on|pinned to) v?\d[\w.]*|(?:has|have) to (?:be|stay)|"
    r"[\w.()`'-]+ only (?:in|for|inside|from) [\w./`'-]+|"
    r"keep (?:the |all |our |your )?(?!it\b|this\b|that\b|them\b)\w+ "
    r"(?:thin|small|short|simple|lean|flat|pure|stateless)\b|"
    r"no longer|stop using|start (?:using|implementing|including|adding|writing|ending|naming|"
    r"incorporating|adopting|following|applying|putting)|do the same|"
    r"importance of|emphasi[sz]e|likewise|it'?s (?:\w+ )?(?:important|crucial|imperative|essential|"
    r"vital|necessary|mandatory) (?:that you|that we|to|for you)|"
    r"(?:we|i)(?:'re|'m| are| am)? (?:now )?requir\w*|"
    r"(?:to|for) all of (?:them|these|those)|make sure your|"
    r"(?:is|are) (?:now )?(?:required|mandatory)|(?:you|we) must|should (?:always )?(?:include|"
    r"use|have|start|end|contain|follow)|"
    r"(?:^|, )for (?:all |any |every |your )*(?:function|method|class|variable|attribute|test)"
    r"(?:s| definitions| names)?, (?:please )?(?:add|use|include|start|end|always|make sure|"
    r"ensure|import)|(?:for|to|in|on|with) (?:every|each|all|any)(?: of)?"
    r"(?: (?:your|our|the|new))? (?:function|method|class|variable|file|module|test|commit|script|"
    r"project)(?:e?s)?|"
    r"(?:in|to|for) (?:all )?(?:of )?(?:your|our) (?:code|functions|methods|classes|variables|"
    r"commits|tests|files|scripts|projects)|all (?:of )?(?:your|our) \w+)\b",
    re.I,
)
# Where a kind of code belongs: "the logic goes in services/", "tests live under tests/"
_PLACEMENT = re.compile(r"\b\w+ (?:goes|go|belongs?|lives?) (?:in|under|into) `?[\w.-]+/", re.I)
_FOR_NOW = re.compile(r"\b(?:for now|this time|for the moment|temporarily|for today)\b", re.I)
# Said as a standing rule even inside a request ("please remember to add comments").
_DURABLE = re.compile(
    r"\b(?:always|never|from now on|going forward|moving forward|every time|whenever|by default|"
    r"in (?:the )?future|remember to|make sure|be sure|don'?t forget|habit|conventions?|"
    r"start (?:using|implementing|including|adding|writing|incorporating|following)|"
    r"standards?|guidelines?|all (?:of )?(?:your|our) \w+)\b",
    re.I,
)
# Durable statements are about the work: a technical word or a code-like token must appear.
_TECHNICAL = re.compile(
    r"[`'\"][^`'\"\s]+[`'\"]|\b\w+[_./]\w+|\b[a-z]+[A-Z]\w*|\b(?:code|coding|function|method|"
    r"class|variable|argument|attribute|name|naming|test|commit|branch|merge|push|file|folder|"
    r"director|module|package|librar|dependenc|import|decorator|annotat|docstring|comment|assert|"
    r"try|exception|error|log|lint|format|type|build|deploy|release|ci\b|pipeline|script|command|"
    r"shell|api|endpoint|database|schema|migration|query|server|config|env|version|docs?\b|"
    r"readme|style|indent|tab|space|editor|ide\b|debug|print|notebook|password|vpn|python|"
    r"javascript|typescript|html|css|sql|git|docker|install|run\b|tool)",
    re.I,
)
_NEG_IMPERATIVE = re.compile(
    r"^(?:(?:please|and|also|but|so|oh|ok|okay),?\s+)*(?:(?:don'?t|do not|never|avoid|stop)\s+\w+|"
    r"no\s+[\w`'().:-]+(?:\s*/\s*[\w`'().:-]+)?\s+(?:in|for|anywhere|please|at all|ever|outside|"
    r"inside|unless|without)\b)",
    re.I,
)
_USE_NOT = re.compile(
    r"\b(?:use|using)\s+(?:the\s+)?\S+?(?:\s+[\w-]+){0,4}?,?\s+(?:not|instead of|rather than|over)"
    r"\s+\S+",
    re.I,
)
_DECISION = re.compile(
    r"\b(?:let'?s (?:go with|use|switch to|migrate to|move to|stick with|adopt|keep|drop|"
    r"do \S+$|also migrate)|we'?ll (?:go with|use|switch to)|we will (?:go with|use|switch to)|"
    r"(?:we|i) (?:have |'ve )?decided (?:to|on|that)|decision (?:is|was)|going with|"
    r"switch(?:ing)? (?:over )?to|migrat(?:e|ing) to|settle on|opt(?:ed)? for|"
    r"switch (?:\w+ ){1,3}from \S+ to|switch (?:the |our |all )?\w+ to|"
    r"move (?:\w+ )?(?:off|away from) \S+(?: \w+)? to \S+|"
    r"keep the [\w/-]+ (?:name|dir|directory|folder)\b|"
    r"(?:bump|raise|lower|upgrade|downgrade) (?:the |our )?[\w.`-]+ (?:to|from) v?\d[\w.]*|"
    r"rename (?:the |our )?`?[\w.:/-]+`?(?: (?:module|crate|package|binary|folder|dir|"
    r"directory|file|class|function|command|service|table|column|field|type))? to `?[\w.:/-]+|"
    r"keep the [\w/ -]{1,30} (?:named|called) \S+)\b",
    re.I,
)
_GOTCHA = re.compile(
    r"\b(?:note that|keep in mind(?: that)?|be careful|beware|watch out|heads up|"
    r"(?:does not|doesn'?t|won'?t) work (?:on|with|here|in|when|unless))\b",
    re.I,
)
_FACT = re.compile(
    r"\b(?:we|i) (?:primarily |mainly |usually |always )?(?:use|host (?:it )?on|deploy (?:it )?to|"
    r"run (?:it )?on)\b|\bour (?:\w+ )?(?:stack|setup|codebase|project) (?:is|uses)\b",
    re.I,
)
_WORKFLOW = re.compile(
    r"\b(?:steps|workflow|process|procedure|checklist)\b[^.]{0,40}:|\b(?:deploy\w*|releas\w*|"
    r"build\w*|test\w*|run\w*|start\w*|install\w*|set ?up|lint\w*|migrat\w*)\b[^.`]{0,40}"
    r"\b(?:is|are|with|by|via|using)\s*:?\s*`",
    re.I,
)
REQUEST = re.compile(
    r"^\W*(?:(?:hey|hi|ok|okay|so|now|and|also)\b[\w ]{0,12}?,?\s+)*(?:please|pls|can you|"
    r"could you|would you|will you|would you mind)\b",
    re.I,
)
# a choice said to someone ("we", "let's", "you") or as an order ("just use requests")
_ADDRESSED = re.compile(
    r"\b(?:i|we|let'?s|you|us|our|my|i'?ll|we'?ll)\b|(?:^|[.,:;]\s*)(?:\w+,?\s+){0,3}?(?:just\s+)?"
    r"(?:use|switch|go with|stick with|move|migrate|adopt|prefer|\S+ (?:is|sounds|looks) "
    r"(?:fine|good|great|ok))\b"
)
_QUESTION = re.compile(r"\?\s*$")


_REASON = re.compile(
    r"^\W*(?:this|that|these|it)(?:'s|\s+(?:is|was|will|would|helps?|ensures?|makes?|allows?|way|"
    r"also|can|should))\b",
    re.I,
)


# "it's crucial that you ...": an instruction, not a reason
ORDER = re.compile(
    r"\bit'?s (?:\w+ )?(?:important|crucial|imperative|essential|vital|necessary|key|mandatory) "
    r"(?:that you|that we|to|for you)\b"
)


def classify(sentence: str) -> tuple[str, float] | None:
    """The category and salience of a user sentence, or None when it states nothing durable.
    A sentence that only gives the reason for the one before ("This helps ...") is None too."""
    norm = consolidate.normalise(sentence)
    if _REASON.match(sentence) and not (
        re.search(r"\b(?:always|never|must)\b|'", norm) or ORDER.search(norm)
    ):
        return None
    if _QUESTION.search(sentence):
        return None  # "Remember how I named them?" is context, not a rule
    if consolidate.naming_subject(norm) is not None:
        return "preference", 0.7
    if consolidate.is_naming_rule(norm):
        return "preference", 0.65
    if _USE_NOT.search(sentence):
        return "preference", 0.6
    request = bool(REQUEST.match(sentence))
    if request and not (_DURABLE.search(sentence) or _NEG_IMPERATIVE.search(sentence)):
        return None  # "please add X": a task for now, not knowledge for later
    if _WORKFLOW.search(sentence) and not re.match(r"^\W*(?:always|never|don'?t)\b", norm):
        return "workflow", 0.55
    placed = _PLACEMENT.search(sentence) and not _FOR_NOW.search(sentence)
    standing = _STRONG.search(sentence) or _EVERYWHERE.search(sentence) or placed
    if (standing or _NEG_IMPERATIVE.search(sentence)) and _TECHNICAL.search(sentence):
        return "preference", 0.6
    choice = consolidate.tool_choice(norm)
    chosen = choice is not None and not choice[1].startswith("!") and bool(_ADDRESSED.search(norm))
    if _DECISION.search(sentence) or chosen:
        return "decision", 0.55
    if _GOTCHA.search(sentence):
        return "gotcha", 0.5
    if _FACT.search(sentence):
        return "fact", 0.4
    return None


# ---- scope: a rule for all of the user's work, or this project's

# Said of every project: "in every project", "across all my repos", "when I work on Python
# projects", "never ... anywhere", "globally".
_EVERYWHERE = re.compile(
    r"\b(?:in|for|across|on|to) (?:all|every|each|any)(?: of)?(?: (?:my|our|your|the))?"
    r"(?: (?:new|other|future|\w+))? (?:projects?|repos?|repositories|codebases?|work)\b|"
    r"\bwhen(?:ever)? (?:i|we|you)(?:'m|'re| am| are)? (?:work|working|start|starting|create|"
    r"creating|set up|setting up|write|writing)(?: on| in)? (?:a |an |any |new |my |our )?"
    r"(?:\w+ ){0,2}?(?:projects?|repos?|repositories|codebases?)\b|"
    r"\b(?:everywhere|anywhere|wherever|globally|regardless of (?:the )?(?:project|repo)|"
    r"no matter (?:which|what) (?:project|repo)|whatever (?:the )?(?:project|repo)|"
    r"as a general rule|all (?:of )?my work)\b",
    re.I,
)
# Said as a standing rule: for all work unless the sentence ties it to this project.
_STANDING = re.compile(
    r"\b(?:always|never|from now on|going forward|moving forward|henceforth|from here on|"
    r"by default|every time|whenever)\b",
    re.I,
)
_LOCAL = re.compile(
    r"\b(?:here|in this|we|we'?re|we'?ve|our|this (?:repo|repository|project|codebase|app|"
    r"service|package|module|file|folder|directory|branch|script|class|function|library|crate|"
    r"site)|the (?:repo|repository|project|codebase|app|service|build|tests?|test suite|ci|"
    r"pipeline|server|database|db|api|frontend|backend|docs|bench(?:es|marks?)?)|"
    r"these (?:files|tests|modules))\b|"
    r"`[^`]+`|['\"`‘“][^'\"`’”\s]+['\"`’”]|\b\w+/\w|"
    r"\b\w+\.(?:py|js|ts|go|rs|md|toml|json|ya?ml|sh)\b",
    re.I,
)


# "anywhere in this repo": "anywhere" is bounded by the repo it names
_HERE = re.compile(
    r"\b(?:here|(?:in|of|for|across) this (?:repo|repository|project|codebase|app|folder|directory|"
    r"service|package|crate|workspace))\b",
    re.I,
)
_ANYWHERE = re.compile(r"^(?:everywhere|anywhere|wherever|globally)$", re.I)


# what stands before the standing word of an instruction: the clause's start, who is told, a
# conjunction ("always run", "I always want", "and never"); "the page always lags" describes
_TOLD = re.compile(
    r"(?:^|[.!?:;,—–-]\s*|\b(?:i|you|please|and|but|so|just|also|then|to|must|should)\s+)$",
    re.I,
)


def _standing(sentence: str) -> bool:
    """Whether a standing word ("always", "never", "from now on") opens an instruction of
    `sentence`, not an aside in parentheses or what a thing always does."""
    text = consolidate.without_parentheses(sentence)  # "(hashed, never store raw keys)"
    return any(_TOLD.search(text[: m.start()]) for m in _STANDING.finditer(text))


def for_all_work(sentence: str, *, instruction: bool = True) -> bool:
    """Whether a rule the user stated holds in every project, not only the one it was said in.

    Yes when it says so ("in every project", "when I work on Python projects", "never ...
    anywhere"), and for a standing instruction ("always ...", "never ...", "from now on ...")
    that does not tie itself to this project: no "here" or "this repo", no team practice ("we
    always ..."), no quoted name, path or file, and no identifier convention (those name this
    codebase's things: "end method names with '_x'"). "Anywhere"/"everywhere" with "in this repo"
    or "here" is bounded by that repo. `instruction` False (a gotcha, a decision):
    only saying so counts, as "the build always fails on Mondays" describes, not instructs."""
    said = _EVERYWHERE.search(sentence)
    if said:
        return not (_ANYWHERE.match(said.group(0)) and _HERE.search(sentence))
    if not instruction or not _standing(sentence) or _LOCAL.search(sentence):
        return False
    norm = consolidate.normalise(sentence)
    return not (consolidate.has_naming_shape(norm) or consolidate.is_naming_rule(norm))
