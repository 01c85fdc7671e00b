"""Plain records shared by every reader and the store."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ToolCall:
    """One tool_use block of an assistant turn."""

    id: str
    name: str
    input: str  # the tool input as compact JSON text


@dataclass
class ToolResult:
    """One tool_result block of a user record, paired to its call by `tool_use_id`."""

    tool_use_id: str
    content: str
    is_error: bool = False


@dataclass
class Turn:
    """One conversational unit: a user message, a merged assistant response, a tool result,
    a compaction summary, a system note.

    `key` identifies the turn inside its session: the API `message.id` for assistant responses
    (several JSONL lines are merged into one turn) and the record `uuid` otherwise. `uuids` lists
    every record uuid merged into the turn, so a child's `parent_uuid` can point at any of them.
    """

    session_id: str
    key: str
    role: str  # user | assistant | system | summary
    kind: str  # message | tool_result | compact_summary | summary | meta | system
    text: str
    uuid: str | None = None
    parent_uuid: str | None = None
    uuids: list[str] = field(default_factory=list)
    message_id: str | None = None
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    timestamp: str | None = None  # ISO 8601 as written by the source
    cwd: str | None = None  # project directory, full path
    git_branch: str | None = None
    is_sidechain: bool = False
    agent_id: str | None = None  # sub-agent id when the turn belongs to a sub-agent
    parent_tool_use_id: str | None = None  # the parent session's Task/Agent tool call
    line_no: int = 0  # 1-based line in the source file of the turn's first record
    dia_id: str | None = None  # LoCoMo dialogue id ("D1:3"), kept for benchmark matching
    speaker: str | None = None  # human-readable speaker name where the source has one
    files: list[str] = field(default_factory=list)  # file paths the turn's tool calls touched
    extra: dict[str, str] = field(default_factory=dict)  # small source-specific fields
    end_offset: int = 0  # reader bookkeeping: byte offset just past the turn's last line
    end_line: int = 0  # reader bookkeeping: 1-based number of the turn's last line


@dataclass
class ParseIssue:
    """A line that could not be read. Counted and reported, never fatal."""

    path: str
    line_no: int
    reason: str


@dataclass
class SessionInfo:
    """What a reader learned about a session besides its turns."""

    session_id: str
    source: str  # claude | generic | locomo
    project: str | None = None  # full path of the project directory (cwd), or a dataset name
    title: str | None = None
    parent_session_id: str | None = None
    agent_id: str | None = None
    parent_tool_use_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
