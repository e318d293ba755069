#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# test-lint.py - refuses test bodies that cannot fail the way they should
# (git's t/chainlint idea, simplified to this suite's shape):
#
#  1. a broken && chain at the top level of a body: a command line that
#     neither ends with &&, ||, |, & (a background job), "|| exit N", an
#     opening word or bracket (then, do, else, in, {, (, ";;"), nor is
#     followed by a closing one (fi, done, esac, }, ), else, elif).  Inside
#     loops, ifs and groups the chain is left to set -e;
#  2. a dangling && on the body's last line;
#  3. "|| :" or "|| true", which hide a crash (use test_might_fail);
#  4. a body that ends without an assertion: its last command only
#     prints, copies, waits or assigns.  Bodies titled "setup", "set up"
#     or "cleanup" are exempt from this one.
#
#   test-lint.py FILE...     prints "FILE:LINE: problem" for each; exit 1
#                            when there is any
#
# Bodies are the last argument of test_expect_success/test_expect_failure,
# written as a single-quoted block whose closing quote stands alone on its
# line; here-documents in them are skipped.
import re
import sys

OPENERS = ("&&", "||", "|", "\\", "{", "(", "then", "do", "else", "in", ";;")
CLOSERS = ("then", "do", "else", "elif", "fi", "done", "esac", "}", ")", ";;",
           "&&", "||", "|")
NOT_ASSERTIONS = {
    "echo", "printf", "cat", ":", "true", "cd", "export", "unset", "rm",
    "mkdir", "cp", "mv", "touch", "sleep", "ln", "chmod", "wait", "kill",
    "set", "test_when_finished", "test_might_fail",
}
START = re.compile(r"^test_expect_(success|failure)\b(.*)'$")
HEREDOC = re.compile(r"<<-?\s*\\?(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
EXEMPT = re.compile(r"^\s*\S*\s*'(setup|set up|cleanup)", re.I)


def bodies(lines):
    """Yields (first line number, title text, [(lineno, text)...])."""
    i = 0
    while i < len(lines):
        m = START.match(lines[i])
        if not m:
            i += 1
            continue
        head, body, j = m.group(2), [], i + 1
        while j < len(lines) and lines[j].rstrip("\n") != "'":
            body.append((j + 1, lines[j].rstrip("\n")))
            j += 1
        yield i + 1, head, body
        i = j + 1


def logical(body):
    """Joins continuations, drops comments, blank lines and here-docs."""
    out, i = [], 0
    while i < len(body):
        no, text = body[i]
        i += 1
        while text.endswith("\\") and i < len(body):
            text = text[:-1] + " " + body[i][1].strip()
            i += 1
        # a double-quoted string may span lines (python -c "...")
        while unbalanced(text) and i < len(body):
            text = text + "\n" + body[i][1]
            i += 1
        m = HEREDOC.search(text)
        if m:
            delim = m.group(2)
            while i < len(body) and body[i][1].strip() != delim:
                i += 1
            i += 1
        s = text.strip()
        if s and not s.startswith("#"):
            out.append((no, s))
    return out


def nesting(line):
    """How much a line opens (if, case, loops, { and ( groups) minus
    what it closes -- by whole words, roughly."""
    toks = re.findall(r"[^\s;]+", line)
    opens = sum(t in ("if", "case", "for", "while", "until", "{", "(")
                for t in toks)
    closes = sum(t in ("fi", "esac", "done", "}", ")") for t in toks)
    return opens - closes


def unbalanced(text):
    """Whether text leaves a double quote open ('...' and \\" aside)."""
    quote = None
    k = 0
    while k < len(text):
        c = text[k]
        if c == "\\" and quote != "'":
            k += 2
            continue
        if quote is None and c in "\"'":
            quote = c
        elif c == quote:
            quote = None
        k += 1
    return quote == '"'


def first_word(cmd):
    cmd = cmd.strip()
    for part in re.split(r"\s*(?:&&|\|\||\|)\s*", cmd)[-1:]:
        cmd = part
    words = cmd.split()
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]
    if not words:
        return "="		# an assignment alone
    return words[0]


def lint(path):
    problems = []
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for start, head, body in bodies(lines):
        ls = logical(body)
        if not ls:
            continue
        case_depth = depth = 0
        for k, (no, s) in enumerate(ls):
            words = s.split()
            top = depth == 0
            depth = max(0, depth + nesting(s))
            if re.search(r"\|\|\s*(:|true)\s*(;|&&|$|\))", s):
                problems.append((no, "'|| :' or '|| true' hides a crash: "
                                 "use test_might_fail"))
            if words and words[0] == "case":
                case_depth += 1
            if words and words[0] == "esac":
                case_depth -= 1
            if k == len(ls) - 1:
                if s.endswith("&&"):
                    problems.append((no, "dangling && at the end of the "
                                     "body"))
                continue
            nxt = ls[k + 1][1]
            if not top:
                continue	# inside a loop, if or group: set -e's job
            if s.endswith(OPENERS) or (s.endswith("&") and
                                       not s.endswith("&&")):
                continue	# an opening word, or a background job
            if re.search(r"\|\|\s*(return|exit)\s+\d+$", s) or \
                    re.search(r"(^|\|\|)\s*\{.*\b(return|exit)\s+\d+;?"
                              r"\s*\}$", s):
                continue	# a loop body's way to fail
            if case_depth > 0 and s.endswith(")") and "(" not in s:
                continue	# a case pattern
            if nxt.startswith(CLOSERS) and (len(nxt) == len(
                    nxt.split()[0]) or not nxt.split()[0].isalnum() or
                    nxt.split()[0] in CLOSERS):
                continue
            problems.append((no, "broken && chain"))
        if EXEMPT.match(head):
            continue
        no, s = ls[-1]
        if s.split()[0] in ("fi", "done", "esac", "}", ")"):
            continue	# a compound command: too much for this lint
        word = first_word(s)
        if word == "=" or word in NOT_ASSERTIONS:
            problems.append((no, "the body ends without an assertion "
                             "(its last command is '%s')" % word))
    return ["%s:%d: %s" % (path, no, why) for no, why in problems]


def main(argv):
    found = []
    for p in argv[1:]:
        found += lint(p)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
