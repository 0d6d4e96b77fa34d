//! The run-command task (RunCommand): a restic subcommand a user typed, run against a
//! repo like every other restic call (its flags, environment and password), its output
//! (stdout and stderr, in the order read) in the operation's log and counted in
//! `outputSizeBytes`. It owns what such a command may be ([`ResticCommand::parse`]): one
//! string split like shell words with no shell involved, starting with a subcommand
//! name, and never pointing restic at another repository or another password source.
//! It does not decide priorities or answer callers (the orchestrator does), and it
//! keeps no output beyond what the log's cap allows.

use std::collections::VecDeque;
use std::fmt;

use crate::proto::{Op, OperationRunCommand};
use crate::restic::split_words;

use super::{Ctx, FollowUp, TaskError};

/// Longest single line of output passed on (a `snapshots --json` is one line).
pub const MAX_LINE: usize = 2 * 1024 * 1024;
/// The failure message quotes at most this many of the last lines of output...
const TAIL_LINES: usize = 8;
/// ...and at most about this many bytes of them.
const TAIL_BYTES: usize = 1500;

/// Why a flag is refused.
#[derive(Clone, Copy)]
enum Refusal {
    Repository,
    Password,
    Options,
}

/// Long flags (without `--`) a command may not carry, and why. The `from-` and `2`
/// forms name the second repository of `copy` and `init --copy-chunker-params`.
const REFUSED_FLAGS: &[(&str, Refusal)] = &[
    ("repo", Refusal::Repository),
    ("repository-file", Refusal::Repository),
    ("from-repo", Refusal::Repository),
    ("from-repository-file", Refusal::Repository),
    ("repo2", Refusal::Repository),
    ("repository-file2", Refusal::Repository),
    ("password-file", Refusal::Password),
    ("password-command", Refusal::Password),
    ("from-password-file", Refusal::Password),
    ("from-password-command", Refusal::Password),
    ("password-file2", Refusal::Password),
    ("password-command2", Refusal::Password),
    ("option", Refusal::Options),
];

/// A command refused before anything ran; the message names the field (`command: ...`)
/// and says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRefused(String);

impl fmt::Display for CommandRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandRefused {}

/// A checked restic command: the text as the user gave it and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResticCommand {
    text: String,
    args: Vec<String>,
}

impl ResticCommand {
    /// Checks and splits a command such as `snapshots --json` or `ls latest /home`. It
    /// is split like shell words (quotes group, `\` escapes; no variables, globs or
    /// command substitution: no shell ever runs). A leading `restic` is allowed and
    /// dropped. Refused: an empty command; a first word that is not a subcommand name
    /// (letters only); `mount`, which never ends by itself; flags that would point
    /// restic at another repository (`-r`, `--repo`, `--repository-file`) or make it
    /// take its password from elsewhere (`--password-file`, `--password-command`),
    /// their `copy` counterparts, and backend options (`-o`, `--option`), which can name
    /// programs to run (`sftp.command`). Words after `--` are arguments, not flags.
    pub fn parse(text: &str) -> Result<ResticCommand, CommandRefused> {
        let refuse = |why: String| Err(CommandRefused(format!("command: {why}")));
        let empty = "give a restic subcommand and its arguments, e.g. \"snapshots --json\"";
        let Ok(mut args) = split_words(text.trim()) else {
            return refuse("unbalanced quote or trailing backslash".into());
        };
        if args.first().is_some_and(|w| w == "restic") {
            args.remove(0);
        }
        let Some(sub) = args.first().filter(|w| !w.is_empty()) else {
            return refuse(empty.into());
        };
        if !sub.bytes().all(|b| b.is_ascii_alphabetic()) {
            return refuse(format!(
                "the first word must be a restic subcommand such as snapshots, stats or \
                 ls; {sub:?} is not one (flags go after the subcommand)"
            ));
        }
        if sub == "mount" {
            return refuse(
                "restic mount never ends by itself and would hold footrest's worker; run it \
                 from a shell"
                    .into(),
            );
        }
        for word in args[1..].iter().take_while(|w| *w != "--") {
            if let Some((flag, why)) = refused_flag(word) {
                return refuse(explain(&flag, why));
            }
        }
        Ok(ResticCommand {
            text: text.trim().to_string(),
            args,
        })
    }

    /// The command as the user gave it (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The words passed to restic, the subcommand first.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    fn subcommand(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or_default()
    }
}

/// The flag in `word` that is refused, as written (`--repo`, `-r`), and why.
fn refused_flag(word: &str) -> Option<(String, Refusal)> {
    if let Some(long) = word.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or_default();
        return REFUSED_FLAGS
            .iter()
            .find(|(refused, _)| *refused == name)
            .map(|(_, why)| (format!("--{name}"), *why));
    }
    // A group of one-letter flags (`-qr`, `-r/srv/other`, `-ofoo=bar`): its leading
    // letters are flags until one takes the rest as its value. Which ones take a value
    // depends on the subcommand, so a group with `r` or `o` among its leading letters is
    // refused even where the letter might be part of a value: refusing too much here
    // is safe, letting through too little is not.
    let group = word.strip_prefix('-')?;
    group
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .find_map(|c| match c {
            'r' => Some(("-r".to_string(), Refusal::Repository)),
            'o' => Some(("-o".to_string(), Refusal::Options)),
            _ => None,
        })
}

fn explain(flag: &str, why: Refusal) -> String {
    match why {
        Refusal::Repository => format!(
            "{flag} would point restic at another repository; a command runs on its repo's \
             repository as the config sets it"
        ),
        Refusal::Password => format!(
            "{flag} would make restic take a password from a file or a command of the \
             caller's choosing; the repo's password comes from the config"
        ),
        Refusal::Options => format!(
            "{flag} sets backend options, which can name programs to run (sftp.command, \
             rclone.program); put options in the repo's flags in the config"
        ),
    }
}

/// The last lines of output, for the message of a failed command.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        let mut line = line.to_string();
        if line.len() > TAIL_BYTES {
            let mut cut = TAIL_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" [...]");
        }
        self.lines.push_back(line);
    }

    /// The kept lines, the newest last, within [`TAIL_BYTES`] (older lines go first).
    fn text(&self) -> String {
        let mut total = 0;
        let mut kept: Vec<&str> = Vec::new();
        for line in self.lines.iter().rev() {
            total += line.len() + 1;
            if total > TAIL_BYTES && !kept.is_empty() {
                break;
            }
            kept.push(line);
        }
        kept.reverse();
        kept.join("\n")
    }
}

/// Runs the command; a non-zero exit fails the operation with the end of the output as
/// its message. The log is the command's output log (`outputLogref`).
pub fn run(ctx: &mut Ctx, command: &ResticCommand) -> Result<Option<FollowUp>, TaskError> {
    ctx.op.op = Op::RunCommand(OperationRunCommand {
        command: command.text().to_string(),
        output_logref: ctx.op.logref.clone(),
        output_size_bytes: 0,
    });
    let mut produced: i64 = 0;
    let mut tail = Tail::default();
    let result = {
        let restic = &ctx.shared.restic;
        let log = &mut ctx.log;
        restic.run_args(
            &ctx.target,
            command.args(),
            MAX_LINE,
            ctx.stop,
            &mut |line| {
                log.line(line);
                produced = produced.saturating_add(line.len() as i64 + 1);
                tail.push(line);
            },
        )
    };
    if let Op::RunCommand(record) = &mut ctx.op.op {
        record.output_size_bytes = produced;
    }
    match result? {
        0 => Ok(None),
        code => {
            let output = tail.text();
            let output = if output.is_empty() {
                "(no output)".to_string()
            } else {
                output
            };
            Err(TaskError::Other(format!(
                "restic {} exited with code {code}: {output}",
                command.subcommand()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        ResticCommand::parse(text).unwrap().args().to_vec()
    }

    fn refused(text: &str) -> String {
        ResticCommand::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn splits_like_shell_words_without_a_shell() {
        assert_eq!(args(" snapshots --json "), ["snapshots", "--json"]);
        assert_eq!(
            args(r#"ls latest "/home/me/My Documents" 'a b' c\ d $HOME `id`"#),
            [
                "ls",
                "latest",
                "/home/me/My Documents",
                "a b",
                "c d",
                "$HOME",
                "`id`"
            ]
        );
        assert_eq!(
            args("restic stats --mode raw-data"),
            ["stats", "--mode", "raw-data"]
        );
        let cmd = ResticCommand::parse("  snapshots --json ").unwrap();
        assert_eq!(cmd.text(), "snapshots --json");
    }

    #[test]
    fn refuses_empty_and_non_subcommands() {
        for text in ["", "   ", "restic", "''"] {
            let m = refused(text);
            assert!(
                m.starts_with("command: give a restic subcommand"),
                "{text:?}: {m}"
            );
        }
        for text in [
            "--no-lock snapshots",
            "/bin/sh -c id",
            "cat;id",
            "self-update",
            "ls2",
        ] {
            let m = refused(text);
            assert!(
                m.starts_with("command: the first word must be a restic subcommand"),
                "{m}"
            );
        }
        assert_eq!(
            refused("ls \"open"),
            "command: unbalanced quote or trailing backslash"
        );
        assert!(refused("mount /mnt").contains("never ends by itself"));
    }

    #[test]
    fn refuses_flags_that_change_the_repository_password_or_options() {
        let cases = [
            ("snapshots -r /srv/other", "-r", "another repository"),
            ("snapshots -r=/srv/other", "-r", "another repository"),
            ("snapshots -r/srv/other", "-r", "another repository"),
            ("snapshots -qr /srv/other", "-r", "another repository"),
            (
                "snapshots --repo /srv/other",
                "--repo",
                "another repository",
            ),
            (
                "snapshots --repo=/srv/other",
                "--repo",
                "another repository",
            ),
            (
                "snapshots --repository-file /etc/shadow",
                "--repository-file",
                "another repository",
            ),
            (
                "copy --from-repo /srv/x",
                "--from-repo",
                "another repository",
            ),
            ("copy --repo2 /srv/x", "--repo2", "another repository"),
            (
                "snapshots --password-file /tmp/p",
                "--password-file",
                "password",
            ),
            (
                "snapshots --password-command=id",
                "--password-command",
                "password",
            ),
            (
                "copy --from-password-command id",
                "--from-password-command",
                "password",
            ),
            ("snapshots -o sftp.command=id", "-o", "backend options"),
            (
                "snapshots --option=rclone.program=id",
                "--option",
                "backend options",
            ),
            ("snapshots -vo sftp.command=id", "-o", "backend options"),
        ];
        for (text, flag, why) in cases {
            let m = refused(text);
            assert!(m.starts_with(&format!("command: {flag} ")), "{text}: {m}");
            assert!(m.contains(why), "{text}: {m}");
        }
    }

    #[test]
    fn lets_other_flags_and_arguments_through() {
        assert_eq!(
            args("find --host pi -i '*.jpg' -- -r --repo"),
            ["find", "--host", "pi", "-i", "*.jpg", "--", "-r", "--repo"]
        );
        assert_eq!(
            args("forget --keep-last 3 --dry-run --repository-files-x"),
            [
                "forget",
                "--keep-last",
                "3",
                "--dry-run",
                "--repository-files-x"
            ]
        );
        // `r` inside a value after a non-letter is not a flag.
        assert_eq!(
            args("backup -e/var/run /srv"),
            ["backup", "-e/var/run", "/srv"]
        );
        assert_eq!(args("ls -l latest"), ["ls", "-l", "latest"]);
    }

    #[test]
    fn the_tail_keeps_the_last_lines_within_bounds() {
        let mut tail = Tail::default();
        assert_eq!(tail.text(), "");
        for i in 0..20 {
            tail.push(&format!("line {i}"));
            tail.push("   ");
        }
        assert_eq!(
            tail.text(),
            (12..20)
                .map(|i| format!("line {i}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tail.push(&"é".repeat(TAIL_BYTES));
        let text = tail.text();
        assert!(text.ends_with(" [...]"), "{text}");
        assert!(text.len() <= TAIL_BYTES + 10, "{}", text.len());
    }
}
