//! Reading what the offline commands are given: files, directories (walked in a stable order) and
//! `-` for standard input. Also the file-system side of the engine's [`Files`] trait.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use palisade_engine::suite::Files;

/// One input text and the name it is reported under (the path as given, or `-`).
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub text: String,
}

/// An input that could not be read; the message names the path.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InputError {
    pub path: String,
    pub message: String,
}

impl InputError {
    fn new(path: &Path, message: impl ToString) -> Self {
        InputError {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}

/// Is this a file the commands read when walking a directory?
pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Every file under `path` (itself when it is a file) accepted by `keep`, sorted, so runs are
/// reproducible. Hidden directories (`.git`, `.state`) are skipped, but a hidden directory given
/// explicitly is walked.
pub fn walk(path: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>, InputError> {
    let metadata = fs::metadata(path).map_err(|err| InputError::new(path, describe(&err)))?;
    if metadata.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|err| InputError::new(&dir, describe(&err)))?;
        for entry in entries {
            let entry = entry.map_err(|err| InputError::new(&dir, describe(&err)))?;
            let child = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|err| InputError::new(&child, describe(&err)))?;
            if file_type.is_dir() {
                let hidden = child
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.') && n != ".kyverno-test");
                if !hidden {
                    pending.push(child);
                }
            } else if keep(&child) {
                found.push(child);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Read resource inputs: `-` is standard input, directories contribute their YAML and JSON files.
pub fn read_inputs(paths: &[String]) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| InputError::new(Path::new("-"), describe(&err)))?;
            inputs.push(Input {
                name: "-".into(),
                text,
            });
            continue;
        }
        for file in walk(Path::new(path), &is_manifest)? {
            inputs.push(read_file(&file)?);
        }
    }
    Ok(inputs)
}

pub fn read_file(path: &Path) -> Result<Input, InputError> {
    let text = fs::read_to_string(path).map_err(|err| InputError::new(path, describe(&err)))?;
    Ok(Input {
        name: path.display().to_string(),
        text,
    })
}

/// I/O errors without Rust's " (os error 2)" tail.
fn describe(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "not valid UTF-8 text".into(),
        _ => {
            let text = err.to_string();
            match text.find(" (os error") {
                Some(at) => text[..at].to_owned(),
                None => text,
            }
        }
    }
}

/// The engine's [`Files`] on the file system: paths are relative to a suite's directory, and may not
/// be absolute paths or climb out of the tree the user pointed at with `..` beyond the root.
pub struct DirFiles {
    pub base: PathBuf,
}

impl Files for DirFiles {
    fn read(&self, path: &str) -> Result<String, String> {
        let full = self.base.join(path);
        fs::read_to_string(&full).map_err(|err| format!("{}: {}", full.display(), describe(&err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walking_is_sorted_and_skips_hidden_directories() {
        let dir = std::env::temp_dir().join(format!("palisade-walk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("b")).unwrap();
        fs::create_dir_all(dir.join(".git")).unwrap();
        fs::write(dir.join("b/z.yaml"), "a: 1").unwrap();
        fs::write(dir.join("a.yml"), "a: 1").unwrap();
        fs::write(dir.join("notes.txt"), "x").unwrap();
        fs::write(dir.join(".git/c.yaml"), "a: 1").unwrap();
        let found = walk(&dir, &is_manifest).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.yml", "b/z.yaml"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_path_is_named_in_the_error() {
        let err = read_inputs(&["/no/such/place.yaml".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/no/such/place.yaml: no such file or directory"
        );
    }
}
