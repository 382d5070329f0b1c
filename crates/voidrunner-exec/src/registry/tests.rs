use super::*;

fn err_text(toml: &str) -> String {
    LanguageRegistry::builtin()
        .merge_toml_str(toml)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn builtin_parses_with_the_five_languages() {
    let r = LanguageRegistry::builtin();
    assert_eq!(r.names(), ["bash", "c", "cpp", "javascript", "python"]);
    let c = r.get("c").expect("c");
    let compile = c.compile.as_ref().expect("c compiles");
    assert_eq!(
        compile.command.expand(&c.template_paths()),
        [
            "/usr/bin/gcc",
            "-O2",
            "-std=gnu17",
            "-o",
            "/work/main",
            "/work/main.c",
            "-lm"
        ]
    );
    assert_eq!(c.run.expand(&c.template_paths()), ["/work/main"]);
    assert_eq!(c.runtime.as_deref(), Some(Path::new("/usr/bin/gcc")));
    let py = r.get("python").expect("python");
    assert!(py.compile.is_none());
    assert_eq!(
        py.run.expand(&py.template_paths()),
        ["/usr/bin/python3", "/work/main.py"]
    );
}

#[test]
fn aliases_resolve_case_insensitively() {
    let r = LanguageRegistry::builtin();
    for (alias, name) in [
        ("py", "python"),
        ("Python3", "python"),
        ("js", "javascript"),
        ("node", "javascript"),
        ("sh", "bash"),
        ("c++", "cpp"),
        ("CPP", "cpp"),
        (" c ", "c"),
    ] {
        assert_eq!(r.get(alias).map(|l| l.name.as_str()), Some(name), "{alias}");
    }
    assert!(r.get("cobol").is_none());
}

#[test]
fn operator_entry_replaces_builtin_and_adds_new() {
    let r = LanguageRegistry::builtin()
        .merge_toml_str(
            r#"
            disabled = ["bash"]
            [languages.python]
            aliases = ["py"]
            source_file = "prog.py"
            run = ["/usr/bin/python3", "-I", "{file}"]

            [languages.ruby]
            display_name = "Ruby"
            aliases = ["rb"]
            source_file = "main.rb"
            run = ["/usr/bin/ruby", "{file}"]
            "#,
        )
        .expect("valid override");
    assert_eq!(r.names(), ["c", "cpp", "javascript", "python", "ruby"]);
    let py = r.get("py").expect("python");
    assert_eq!(py.source_file, "prog.py");
    // Replaced entirely: the built-in alias and env are gone.
    assert!(r.get("python3").is_none());
    assert!(py.env.is_empty());
    assert_eq!(py.display_name, "python");
    assert!(r.get("sh").is_none() && r.get("bash").is_none());
    assert_eq!(r.get("rb").map(|l| l.name.as_str()), Some("ruby"));
}

#[test]
fn with_overrides_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("languages.toml");
    std::fs::write(
        &path,
        "[languages.c]\nsource_file = \"a.c\"\nrun = [\"{out}\"]\n[languages.c.compile]\ncommand = [\"/usr/bin/gcc\", \"-o\", \"{out}\", \"{file}\"]\nmemory_mb = 1024\n",
    )
    .expect("write");
    let r = LanguageRegistry::with_overrides(&path).expect("valid file");
    let c = r.get("c").expect("c");
    let limits = c.compile.as_ref().expect("compile").limits;
    assert_eq!(limits.memory_mb, 1024);
    assert_eq!(limits.timeout_secs, CompileLimits::default().timeout_secs);

    std::fs::write(&path, "[languages.c]\nsource_file = \"a.c\"\n").expect("write");
    let err = LanguageRegistry::with_overrides(&path)
        .expect_err("missing run")
        .to_string();
    assert!(err.contains("languages.toml"), "{err}");
    assert!(
        err.contains("language `c`") && err.contains("missing field `run`"),
        "{err}"
    );

    let missing = LanguageRegistry::with_overrides(&dir.path().join("nope.toml"))
        .expect_err("no file")
        .to_string();
    assert!(missing.contains("nope.toml"), "{missing}");
}

#[test]
fn bad_toml_errors_name_language_and_field() {
    let cases = [
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"/bin/x\"]\ndisplay_name = 3\n",
            "field `display_name`",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrn = [\"/bin/x\"]\n",
            "unknown field `rn`",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"x\"]\n",
            "field `run[0]`: program `x` must be an absolute path",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"/bin/x\", \"{src}\"]\n",
            "field `run[1]`: unknown placeholder `{src}`",
        ),
        (
            "[languages.x]\nsource_file = \"../m\"\nrun = [\"/bin/x\"]\n",
            "field `source_file`",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"{out}\"]\n",
            "field `run`: uses {out}",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"{out}\"]\n[languages.x.compile]\ncommand = [\"/bin/cc\"]\nmemory_mb = 2\n",
            "field `compile.memory_mb`: must be between 8",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"/bin/x\"]\n[languages.x.compile]\ncommand = [\"/bin/cc\"]\ntimeout_secs = \"long\"\n",
            "field `compile.timeout_secs`",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"/bin/x\"]\nexecutor = \"docker\"\n",
            "field `image`: is required",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"/bin/x\"]\nexecutor = \"podman\"\n",
            "field `executor`",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"/bin/x\"]\naliases = [\"py\"]\n",
            "`py` is already used by language `python`",
        ),
        (
            "[languages.X]\nsource_file = \"m\"\nrun = [\"/bin/x\"]\n",
            "language `X`, field `name`",
        ),
        (
            "[languages.x]\nsource_file = \"m\"\nrun = [\"/bin/x\"]\nenv = { \"A=B\" = \"1\" }\n",
            "field `env.A=B`",
        ),
        (
            "disabled = [\"cobol\"]\n",
            "language `cobol`, field `disabled[0]`",
        ),
        ("language = 1\n", "unknown field `language`"),
        ("[languages.x\n", "invalid language registry TOML"),
    ];
    for (toml, expected) in cases {
        let text = err_text(toml);
        assert!(text.contains(expected), "{toml:?}\n  gave: {text}");
        if !expected.contains("TOML") && !expected.contains("unknown field `language`") {
            assert!(text.contains("language `"), "{text}");
        }
    }
}

#[test]
fn missing_runtime_marks_language_unavailable_not_an_error() {
    let r = LanguageRegistry::from_toml_str(
        r#"
        [languages.ghost]
        source_file = "main.g"
        run = ["/nonexistent/bin/ghost", "{file}"]

        [languages.fixed]
        source_file = "main.sh"
        version = "9.9"
        run = ["/bin/bash", "{file}"]

        [languages.docker-py]
        source_file = "main.py"
        run = ["/usr/bin/python3", "{file}"]
        executor = "docker"
        image = "python:3.12-slim"
        "#,
    )
    .expect("valid registry");
    let ghost = r.get("ghost").expect("configured");
    match ghost.availability() {
        Availability::Unavailable { reason } => {
            assert!(reason.contains("/nonexistent/bin/ghost"), "{reason}");
        }
        other @ Availability::Available { .. } => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(ghost.version(), None);
    assert!(
        ghost
            .availability()
            .to_string()
            .starts_with("unavailable: runtime /nonexistent")
    );
    assert_eq!(r.get("fixed").and_then(Language::version), Some("9.9"));
    assert_eq!(
        r.get("fixed").map(|l| l.availability().to_string()),
        Some("available, version 9.9".to_owned())
    );
    let docker = r.get("docker-py").expect("parsed");
    assert_eq!(docker.executor, ExecutorKind::Docker);
    assert_eq!(docker.image.as_deref(), Some("python:3.12-slim"));
    // The runtime is in the image: the host's python is never run, the tag is the version.
    assert_eq!(docker.version(), Some("3.12-slim"));
    let names: Vec<_> = r.available().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["docker-py", "fixed"]);
    assert_eq!(r.report().len(), 3);
}

#[test]
fn builtin_runtimes_of_this_host_are_detected_with_versions() {
    let r = LanguageRegistry::builtin();
    let available = r.available();
    let version = |name: &str| {
        available
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.version.clone())
            .unwrap_or_else(|| {
                panic!(
                    "{name} unavailable: {:?}",
                    r.get(name).map(Language::availability)
                )
            })
    };
    assert!(version("python").starts_with("3."), "{}", version("python"));
    assert!(
        version("javascript")
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    );
    assert!(version("bash").starts_with('5'));
    assert!(version("c").contains('.'));
    assert!(version("cpp").contains('.'));
}
