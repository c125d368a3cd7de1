"""A tiny `sh` lexer and parser: what adbutils and the Android adapter send.

Quotes, `$VAR`/`${VAR}`/`$?`, `;`, `&&`, `||`, pipes and `>`/`>>`/`2>`/`2>&1`
redirections; `&` separates commands (the phone runs them in the foreground).
`parse(line)` returns the command sequence; words keep their `$VAR`
references so that `$?` expands to the status of the command before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class ShellSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Var:
    name: str


@dataclass
class Word:
    parts: list  # str pieces and Var references, expanded when the command runs
    quoted: bool = False

    def expand(self, env: dict[str, str]) -> str:
        return "".join(env.get(p.name, "") if isinstance(p, Var) else p for p in self.parts)

    @property
    def literal(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Marks that the word before it is a redirection operator (its target follows).
REDIRECT = "<redir>"


class _Lexer:
    """One pass over a line; `word` is the word being built (None between words)."""

    def __init__(self, line: str) -> None:
        self.line, self.i = line, 0
        self.tokens: list[Word | str] = []
        self.word: list | None = None
        self.quoted = False

    def run(self) -> list[Word | str]:
        line = self.line
        while self.i < len(line):
            c = line[self.i]
            if c in " \t\n":
                self.flush()
                self.i += 1
            elif c == "#" and self.word is None:
                break  # a comment runs to the end of the line
            elif line.startswith(("&&", "||"), self.i):
                self.operator(line[self.i : self.i + 2])
            elif c in ";|&":
                self.operator(c)
            elif c in "<>":
                self.redirection(c)
            elif c == "'":
                self.single_quoted()
            elif c == '"':
                self.double_quoted()
            elif c == "\\":
                self.escaped()
            elif c == "$":
                value, self.i = self.variable(self.i)
                self.add([value])
            elif c in "()`":
                raise ShellSyntaxError(f"syntax error: '{c}' unexpected")
            else:
                self.add([c])
                self.i += 1
        self.flush()
        return self.tokens

    def add(self, parts: list, quoted: bool = False) -> None:
        self.word = (self.word or []) + parts
        self.quoted = self.quoted or quoted

    def flush(self) -> None:
        if self.word is not None:
            self.tokens.append(Word(self.word, self.quoted))
        self.word, self.quoted = None, False

    def operator(self, op: str) -> None:
        if op == "&" and self.word and self.word[-1] == ">":
            self.add([op])
        else:
            self.flush()
            self.tokens.append(op)
        self.i += len(op)

    def redirection(self, c: str) -> None:
        """The operator becomes its own word, keeping a leading fd digit (`2>`) and a `&N` target (`2>&1`)."""
        word, line = self.word, self.line
        if word is not None and not self.quoted and len(word) == 1 and isinstance(word[0], str) and word[0].isdigit():
            prefix = word[0]
            self.word = None
        else:
            self.flush()
            prefix = ""
        op = ">>" if line.startswith(">>", self.i) else c
        self.i += len(op)
        if line.startswith("&", self.i):
            op += line[self.i : self.i + 2]
            self.i += 2
        self.tokens += [Word([prefix + op]), REDIRECT]

    def single_quoted(self) -> None:
        end = self.line.find("'", self.i + 1)
        if end < 0:
            raise ShellSyntaxError("unterminated quoted string")
        self.add([self.line[self.i + 1 : end]], quoted=True)
        self.i = end + 1

    def double_quoted(self) -> None:
        line, n = self.line, len(self.line)
        self.i += 1
        buf: list = []
        while True:
            if self.i >= n:
                raise ShellSyntaxError("unterminated quoted string")
            ch = line[self.i]
            if ch == '"':
                self.i += 1
                break
            if ch == "\\" and self.i + 1 < n and line[self.i + 1] in '"\\$`\n':
                buf.append(line[self.i + 1])
                self.i += 2
            elif ch == "$":
                value, self.i = self.variable(self.i)
                buf.append(value)
            elif ch == "`":
                raise ShellSyntaxError("command substitution is not supported")
            else:
                buf.append(ch)
                self.i += 1
        self.add(buf, quoted=True)

    def escaped(self) -> None:
        line = self.line
        if self.i + 1 < len(line) and line[self.i + 1] != "\n":
            self.add([line[self.i + 1]])
        self.i += 2  # a backslash-newline joins lines; a trailing backslash is dropped

    def variable(self, j: int) -> tuple[str | Var, int]:
        """The `$...` reference at line[j] and the index after it; a lone `$` stays literal."""
        line = self.line
        if line.startswith("$?", j):
            return Var("?"), j + 2
        if line.startswith("${", j):
            end = line.find("}", j + 2)
            if end < 0:
                raise ShellSyntaxError("bad substitution")
            return Var(line[j + 2 : end]), end + 1
        m = _NAME.match(line, j + 1)
        if not m:
            return "$", j + 1
        return Var(m.group(0)), m.end()


def tokenize(line: str) -> list[Word | str]:
    """Split like sh: words (quotes removed, `$VAR` kept as references outside single quotes) and operators (str)."""
    return _Lexer(line).run()


@dataclass
class Command:
    argv: list[Word] = field(default_factory=list)
    redirects: list[tuple[str, Word | None]] = field(default_factory=list)  # (operator like "2>", target)


def parse(line: str) -> list[tuple[str, list[Command]]]:
    """[(connector, pipeline)], connector being ";" / "&&" / "||" before the pipeline."""
    tokens = tokenize(line)
    sequence: list[tuple[str, list[Command]]] = []
    connector = ";"
    pipeline: list[Command] = [Command()]
    k = 0
    while k < len(tokens):
        tok = tokens[k]
        if isinstance(tok, str):
            if tok == "|":
                if not pipeline[-1].argv:
                    raise ShellSyntaxError("syntax error: '|' unexpected")
                pipeline.append(Command())
            elif tok in (";", "&&", "||", "&"):
                if pipeline[-1].argv:
                    sequence.append((connector, pipeline))
                elif tok != ";" or len(pipeline) > 1:
                    raise ShellSyntaxError(f"syntax error: '{tok}' unexpected")
                connector = ";" if tok == "&" else tok
                pipeline = [Command()]
            k += 1
            continue
        if k + 1 < len(tokens) and tokens[k + 1] == REDIRECT:
            op = tok.literal
            target_k = k + 2
            if "&" in op:
                pipeline[-1].redirects.append((op, None))
                k += 2
                continue
            if target_k >= len(tokens) or not isinstance(tokens[target_k], Word):
                raise ShellSyntaxError("syntax error: redirection without a file")
            pipeline[-1].redirects.append((op, tokens[target_k]))  # type: ignore[arg-type]
            k += 3
            continue
        pipeline[-1].argv.append(tok)
        k += 1
    if pipeline[-1].argv:
        sequence.append((connector, pipeline))
    return sequence
