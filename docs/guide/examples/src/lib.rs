//! The guide's code blocks (`docs/guide/src`), compiled and run as doc tests.
//!
//! Each page of the guide is included below as the documentation of an
//! empty item, so `cargo test -p guide-examples` compiles and runs every
//! fenced Rust block of it (an untagged fence counts as Rust; shell, TOML
//! and output blocks are fenced `sh`, `toml`, `text`). Lines starting with
//! `# ` are compiled but hidden by mdBook: imports and scaffolding. The test
//! below fails when a page of `SUMMARY.md` is not included here, so a new
//! page cannot escape compilation.

/// Includes a guide page (path relative to `docs/guide/src`) as doc tests.
macro_rules! pages {
    ($($name:ident => $path:literal,)*) => {
        $(
            #[cfg(doctest)]
            #[doc = include_str!(concat!("../../src/", $path))]
            pub struct $name;
        )*
        /// Every page compiled as doc tests, relative to `docs/guide/src`.
        pub const PAGES: &[&str] = &[$($path),*];
    };
}

pages! {
    Introduction => "introduction.md",
    GettingStarted => "getting-started.md",
    Plugin => "components/plugin.md",
    Aggregate => "components/aggregate.md",
    DcbSlice => "components/dcb-slice.md",
    ReadModel => "components/read-model.md",
    Automation => "components/automation.md",
    Translations => "components/translations.md",
    Extensions => "components/extensions.md",
    AsyncCommands => "components/async-commands.md",
    EventVersioning => "components/event-versioning.md",
    Local => "platforms/local.md",
    Postgres => "platforms/postgres.md",
    Aws => "platforms/aws.md",
    Explorer => "tools/explorer.md",
    Replay => "tools/replay.md",
    ExtensionCommands => "components/extension-commands.md",
    Schedules => "components/schedules.md",
    Tasks => "components/tasks.md",
    HttpRoutes => "components/http-routes.md",
    Mcp => "tools/mcp.md",
}

#[cfg(test)]
mod tests {
    use super::PAGES;

    /// The pages `SUMMARY.md` links to, in order.
    fn summary_pages() -> Vec<String> {
        let summary = include_str!("../../src/SUMMARY.md");
        summary
            .lines()
            .filter_map(|line| {
                let start = line.find("](")? + 2;
                let end = start + line[start..].find(')')?;
                Some(line[start..end].to_string())
            })
            .collect()
    }

    #[test]
    fn every_page_of_the_summary_is_compiled_and_nothing_else() {
        let mut linked = summary_pages();
        let mut compiled: Vec<String> = PAGES.iter().map(|p| p.to_string()).collect();
        linked.sort();
        compiled.sort();
        assert_eq!(linked, compiled, "SUMMARY.md and the pages! list of guide-examples differ");
    }

    #[test]
    fn every_page_exists_and_has_a_title() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../src");
        for page in summary_pages() {
            let text = std::fs::read_to_string(root.join(&page))
                .unwrap_or_else(|e| panic!("{page} is linked from SUMMARY.md but unreadable: {e}"));
            assert!(text.starts_with("# "), "{page} starts with its title");
        }
    }
}
