//! `reventless new NAME`: a project of one's own, outside this repository —
//! a cargo workspace with a Library plugin (aggregate, DCB slices, read
//! model, automation) and its Given/When/Then tests, the app binary, the
//! Lambda bootstraps, `reventless.toml`, a README and a `.gitignore`.
//!
//! The files are templates compiled into the CLI (`templates/new/`); only
//! `{{name}}` and the reventless dependencies are filled in.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The directory to create; its last component is the package name.
    pub path: PathBuf,
    /// Depend on the reventless crates of this checkout (the repository, or
    /// its `crates/` directory) by path instead of by version.
    #[arg(long, value_name = "DIR")]
    pub reventless_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("`{name}` is not a valid package name: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("{} exists and is not empty: choose a new directory (nothing was written)", path.display())]
    NotEmpty { path: PathBuf },
    #[error("{} exists and is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error(
        "{}: no reventless crates there (expected `crates/reventless/Cargo.toml` or `reventless/Cargo.toml`)",
        path.display()
    )]
    NoReventlessCrates { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// One template: its path in the new project, its text.
struct Template {
    path: &'static str,
    text: &'static str,
}

macro_rules! templates {
    ($($path:literal => $file:literal),* $(,)?) => {
        &[$(Template { path: $path, text: include_str!(concat!("../templates/new/", $file)) }),*]
    };
}

const TEMPLATES: &[Template] = templates![
    "Cargo.toml" => "Cargo.toml.tmpl",
    "README.md" => "README.md",
    ".gitignore" => "gitignore.tmpl",
    "rustfmt.toml" => "rustfmt.toml",
    "reventless.toml" => "reventless.toml.tmpl",
    "src/main.rs" => "src/main.rs",
    "tests/app.rs" => "tests/app.rs",
    "data/first-day.jsonl" => "data/first-day.jsonl",
    "library/Cargo.toml" => "library/Cargo.toml.tmpl",
    "library/src/lib.rs" => "library/src/lib.rs",
    "library/src/events.rs" => "library/src/events.rs",
    "library/src/members.rs" => "library/src/members.rs",
    "library/src/loans.rs" => "library/src/loans.rs",
    "library/src/books.rs" => "library/src/books.rs",
    "library/src/leavers.rs" => "library/src/leavers.rs",
    "library/tests/rules.rs" => "library/tests/rules.rs",
    "lambda/Cargo.toml" => "lambda/Cargo.toml.tmpl",
    "lambda/src/bin/library-lambda.rs" => "lambda/src/bin/library-lambda.rs",
    "lambda/src/bin/platform-gateway.rs" => "lambda/src/bin/platform-gateway.rs",
];

/// Package names the project's own crates and its dependencies use.
const TAKEN: &[&str] = &["library", "library-lambda", "library_lambda"];

/// Where the reventless crates come from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    Version(String),
    Path(PathBuf),
}

impl Source {
    /// The inside of `name = { … }` in `[workspace.dependencies]`.
    fn dependency(&self, krate: &str) -> String {
        match self {
            Source::Version(version) => format!("version = \"{version}\""),
            Source::Path(crates) => format!("path = {}", toml_string(&crates.join(krate).display().to_string())),
        }
    }
}

/// A TOML basic string (paths may hold quotes or backslashes).
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// What `new` made.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub name: String,
    pub path: PathBuf,
    pub reventless: Source,
    pub files: Vec<String>,
}

/// Checks `name` as cargo would for a new package (and against the names
/// the project itself uses).
pub fn check_name(name: &str) -> Result<(), NewError> {
    let invalid = |reason: &str| Err(NewError::InvalidName { name: name.to_string(), reason: reason.to_string() });
    let Some(first) = name.chars().next() else {
        return invalid("it is empty");
    };
    if !first.is_ascii_alphabetic() {
        return invalid("it must start with an ASCII letter");
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return invalid(&format!("`{bad}` is not allowed (ASCII letters, digits, `-` and `_` only)"));
    }
    if name.len() > 64 {
        return invalid("it is longer than 64 characters");
    }
    let lower = name.to_ascii_lowercase();
    if RUST_KEYWORDS.contains(&lower.as_str())
        || ["test", "std", "core", "alloc", "proc_macro"].contains(&lower.as_str())
    {
        return invalid("it is a Rust keyword or the name of a standard crate");
    }
    if TAKEN.contains(&lower.as_str()) || lower.starts_with("reventless") {
        return invalid("the project's own crates (library, library-lambda) or reventless's use it");
    }
    Ok(())
}

const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
    "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// The crates directory of a reventless checkout given as the repository or
/// as its `crates/` directory, absolute.
fn reventless_crates(dir: &Path) -> Result<PathBuf, NewError> {
    let absolute = dir.canonicalize().map_err(|_| NewError::NoReventlessCrates { path: dir.to_path_buf() })?;
    [absolute.join("crates"), absolute]
        .into_iter()
        .find(|crates| {
            crates.join("reventless/Cargo.toml").is_file() && crates.join("reventless-aws/Cargo.toml").is_file()
        })
        .ok_or_else(|| NewError::NoReventlessCrates { path: dir.to_path_buf() })
}

/// Refuses a path that exists as a file or a non-empty directory.
fn check_target(path: &Path) -> Result<(), NewError> {
    match std::fs::read_dir(path).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(NewError::NotEmpty { path: path.to_path_buf() }),
        Err(_) if path.exists() => Err(NewError::NotADirectory { path: path.to_path_buf() }),
        Err(_) => Ok(()),
    }
}

fn render(text: &str, name: &str, source: &Source) -> String {
    text.replace("{{name}}", name)
        .replace("{{reventless-aws}}", &source.dependency("reventless-aws"))
        .replace("{{reventless}}", &source.dependency("reventless"))
}

/// Writes the project; `progress` hears each file written.
pub fn create(args: &Args, progress: &dyn Fn(String)) -> Result<Created, NewError> {
    let Some(name) = args.path.file_name().map(|n| n.to_string_lossy().to_string()) else {
        return Err(NewError::InvalidName {
            name: args.path.display().to_string(),
            reason: "name the directory to create, e.g. `reventless new my-library`".into(),
        });
    };
    check_name(&name)?;
    check_target(&args.path)?;
    let source = match &args.reventless_path {
        Some(dir) => Source::Path(reventless_crates(dir)?),
        None => Source::Version(env!("CARGO_PKG_VERSION").to_string()),
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NewError::Io { path, source }
    };
    let mut files = Vec::with_capacity(TEMPLATES.len());
    for template in TEMPLATES {
        let file = args.path.join(template.path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&file, render(template.text, &name, &source)).map_err(io(&file))?;
        progress(format!("  created {}", template.path));
        files.push(template.path.to_string());
    }
    let path = args.path.canonicalize().map_err(io(&args.path))?;
    Ok(Created { name, path, reventless: source, files })
}

pub fn run(args: &Args, as_json: bool) -> Result<ExitCode, String> {
    eprintln!("creating {} (the Library plugin, its tests, the app, reventless.toml)", args.path.display());
    let created = create(args, &|line| eprintln!("{line}")).map_err(|e| e.to_string())?;
    if as_json {
        println!("{}", json!(created));
        return Ok(ExitCode::SUCCESS);
    }
    let from = match &created.reventless {
        Source::Version(version) => format!("reventless {version}"),
        Source::Path(crates) => format!("reventless from {}", crates.display()),
    };
    println!("created `{}` in {} ({} files, {from})", created.name, created.path.display(), created.files.len());
    println!(
        "next:\n  cd {}\n  cargo run -- dev    # GraphQL at http://127.0.0.1:4000/graphql\n  cargo test",
        args.path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cargo_would_refuse_or_the_project_uses_are_refused() {
        for good in ["my-library", "shop2", "a_b"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "2shop", "my app", "ünï", "fn", "test", "library", "reventless-core", "a.b"] {
            assert!(matches!(check_name(bad), Err(NewError::InvalidName { .. })), "{bad}");
        }
    }

    #[test]
    fn every_placeholder_is_filled_and_paths_are_quoted_for_toml() {
        let source = Source::Path(PathBuf::from("/src/re\"v"));
        for template in TEMPLATES {
            let text = render(template.text, "my-library", &source);
            assert!(!text.contains("{{"), "{} keeps a placeholder", template.path);
        }
        assert_eq!(source.dependency("reventless"), r#"path = "/src/re\"v/reventless""#);
    }
}
