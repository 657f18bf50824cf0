//! `snapguard man`: the manual pages, generated from the command line's own
//! definition (so they list every command and flag of this binary), each
//! with an EXIT STATUS section from [`crate::exit_codes::MEANINGS`].
//!
//! The main page lists the commands as `snapguard-deploy(1)` and so on;
//! `man --dir` writes those pages too, so every reference resolves.

use std::path::{Path, PathBuf};

/// The page of `command` (built, so subcommands carry their full names).
pub fn page(command: &clap::Command) -> Vec<u8> {
    let mut command = command.clone().disable_help_subcommand(true);
    command.build();
    render(&command)
}

fn render(command: &clap::Command) -> Vec<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .expect("rendering into memory does not fail");
    page.extend_from_slice(exit_status().as_bytes());
    page
}

/// Writes `snapguard.1` and a page per command and subcommand into `dir`;
/// returns the files written.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    std::fs::create_dir_all(dir)?;
    let mut command = super::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_tree(&command, dir, &mut written)?;
    for path in &written {
        crate::outln!("{}", path.display());
    }
    Ok(written)
}

fn write_tree(
    command: &clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), std::io::Error> {
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name());
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, render(command))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, dir, written)?;
    }
    Ok(())
}

/// The EXIT STATUS section, in roff.
fn exit_status() -> String {
    let mut roff = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in crate::exit_codes::MEANINGS {
        roff.push_str(&format!(".TP\n\\fB{code}\\fR\n{}\n", escape(meaning)));
    }
    roff
}

/// Text as roff reads it literally: backslashes doubled, a leading dot or
/// quote kept from being read as a request.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_page_and_every_page_its_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in [
            "snapguard.1",
            "snapguard-deploy.1",
            "snapguard-recover.1",
            "snapguard-migrate-status.1",
            "snapguard-config-check.1",
        ] {
            assert!(
                names.contains(&expected.to_owned()),
                "{expected} in {names:?}"
            );
        }
        let main = std::fs::read_to_string(dir.path().join("snapguard.1")).unwrap();
        // Every page the main page refers to was written.
        let mut referenced = 0;
        for line in main.lines() {
            if let Some(name) = line
                .strip_prefix("snapguard\\-")
                .and_then(|l| l.strip_suffix("(1)"))
            {
                let page = format!("snapguard-{}.1", name.replace("\\-", "-"));
                assert!(names.contains(&page), "{page} is referenced but absent");
                referenced += 1;
            }
        }
        assert!(referenced >= 15, "only {referenced} references found");
        for path in &written {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.contains(".SH \"EXIT STATUS\""), "{}", path.display());
            assert!(text.contains("\\fB5\\fR"), "{}", path.display());
        }
    }
}
