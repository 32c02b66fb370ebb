"""The shell command classifier: what may run unasked, what changes things, what destroys."""

from __future__ import annotations

import pytest

from koda.tools.base import Effect
from koda.tools.bash_effect import classify

R, L, D = Effect.READ_ONLY, Effect.LOCAL_MUTATION, Effect.DESTRUCTIVE
X = Effect.REMOTE_ACTION


@pytest.mark.parametrize("command", [
    "ls -la",
    "cat README.md | head -n 20",
    "grep -rn TODO src | sort | uniq -c | wc -l",
    'grep "rm -rf" notes.txt',
    "grep 'a; rm x' f",
    "echo 'x && rm -rf /'",
    "echo a\\;rm",
    "find . -name '*.py' -newer setup.py",
    "ls 2>/dev/null",
    "ls > /dev/null 2>&1",
    "ls 2>&1 | head",
    "cmd_output=1 FOO=bar ls",
    "git status --short",
    "git log --oneline -5 && git diff HEAD~1",
    "git -C sub show HEAD:README.md",
    "git --no-pager branch -a",
    "git branch",
    "git branch --list 'feat*'",
    "git remote -v",
    "git tag",
    "git tag -l 'v1.*'",
    "git rev-parse --abbrev-ref HEAD",
    "python --version",
    "node -V",
    "cd src && ls",
    "for f in *.py; do wc -l \"$f\"; done",
    "if [ -f x ]; then cat x; else echo none; fi",
    "awk '{print $1}' data.txt",
    "jq .name package.json",
    "command -v python3",
    "ls # rm -rf / is only a comment",
    "cat <<'END'\nrm -rf /\nEND",
    "true || false",
    "",
    # Substitutions, -c scripts and eval are judged by what they run.
    "echo $(date)",
    "echo \"now: $(date)\"",
    "echo `whoami`",
    "diff <(ls a) <(ls b)",
    "sh -c 'ls'",
    "bash -lc 'echo hi'",
    "eval ls",
])  # fmt: skip
def test_read_only(command: str) -> None:
    assert classify(command) is R


@pytest.mark.parametrize("command", [
    "pytest -q",
    "python script.py",
    "npm install",
    "mv a b",
    "touch new.txt",
    "echo hi > out.txt",
    "echo hi >> log.txt",
    "ls >& listing.txt",
    "cat a | tee b",
    "git commit -m 'msg'",
    "git branch new-feature",
    "git tag v1.0",
    "git remote add origin url",
    "git diff --output=changes.patch",
    "sed -n 1,5p file",
    "sort -o sorted.txt data.txt",
    "uniq in.txt out.txt",
    "awk '{ system(\"date\") }' f",
    "awk '{print > \"out\"}' f",
    "chmod +x run.sh",
    "find . -fprint list.txt",
    "hostname newname",
    "./configure --version",
    'echo "unterminated',
    "timeout 5 make",
    "cat > notes.md <<'END'\nhello\nEND",
])  # fmt: skip
def test_local_mutation(command: str) -> None:
    assert classify(command) is L


@pytest.mark.parametrize("command", [
    "rm file.txt",
    "rm -rf build",
    "/bin/rm x",
    "\\rm x",
    "ls && rm -rf /tmp/x",
    "ls; rmdir empty",
    "(cd build && rm -r out)",
    "FOO=1 rm x",
    "sudo apt-get install x",
    "dd if=/dev/zero of=disk.img",
    "mkfs.ext4 /dev/sdb1",
    "chmod -R 777 .",
    "chown me file",
    "kill 1234",
    "pkill -f server",
    "killall python",
    "git push --force",
    "git push -f origin main",
    "git push origin +main",
    "git reset --hard HEAD~3",
    "git clean -fdx",
    "git -C repo clean --force",
    "git branch -D old",
    "sed -i 's/a/b/' f.txt",
    "sed --in-place=.bak 's/a/b/' f.txt",
    "find . -name '*.pyc' -delete",
    "find . -name '*.tmp' -exec rm {} +",
    "echo $(rm -rf /)",
    "echo \"$(rm -rf x)\"",
    "echo `rm x`",
    "bash -c 'rm -rf x'",
    "sh -c \"ls && rm y\"",
    "eval 'rm x'",
    "xargs rm < files.txt",
    "cat list | xargs -n 1 rm",
    "timeout 10 rm x",
    "env FOO=1 rm x",
    "nohup rm -rf x &",
    "if true; then rm x; fi",
    "cat <<END\nhello $(rm -rf x)\nEND",
    "rm x; echo \"unterminated",
    "shutdown -h now",
])  # fmt: skip
def test_destructive(command: str) -> None:
    assert classify(command) is D


def test_worst_segment_wins() -> None:
    assert classify("ls && echo hi > f") is L
    assert classify("echo hi > f && rm f") is D
    assert classify("ls | grep x") is R


@pytest.mark.parametrize("command", [
    "git push origin main",
    "gh pr create --fill",
    "curl -X POST https://example.com/api",
])  # fmt: skip
def test_remote_action(command: str) -> None:
    assert classify(command) is X


def test_local_change_outranks_remote_action_when_combined() -> None:
    # Both ask in Safe and run in Auto; the local one wins so an undo checkpoint is kept.
    assert classify("git push origin main && echo done > log.txt") is L
    assert classify("echo done > log.txt; git push origin main") is L
    assert classify("git push origin main && git push --force") is D
