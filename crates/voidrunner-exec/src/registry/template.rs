//! Command templates: argv vectors with `{file}` / `{out}` / `{dir}` placeholders, expanded
//! element by element. A template is never joined into a shell string, so nothing in a path
//! or in user input can be interpreted by a shell.

/// Where the workspace is mounted inside the sandbox; placeholders expand below it.
pub const WORK_DIR: &str = "/work";

/// One part of an argv element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder(Placeholder),
}

/// The names a template may use between braces (`{{` and `}}` are literal braces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    /// The source file, e.g. `/work/main.c`.
    File,
    /// The compiled artifact, e.g. `/work/main`.
    Out,
    /// The work directory, `/work`.
    Dir,
}

/// Paths a template expands to for one execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePaths {
    /// Absolute path of the source file inside the sandbox.
    pub file: String,
    /// Absolute path of the compile output inside the sandbox.
    pub out: String,
    /// The work directory inside the sandbox.
    pub dir: String,
}

impl TemplatePaths {
    /// Paths for a source file and compile output named relative to [`WORK_DIR`].
    pub fn in_work_dir(source_file: &str, output: &str) -> Self {
        Self {
            file: format!("{WORK_DIR}/{source_file}"),
            out: format!("{WORK_DIR}/{output}"),
            dir: WORK_DIR.to_owned(),
        }
    }
}

/// A validated argv template (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    raw: Vec<String>,
    parsed: Vec<Vec<Segment>>,
}

impl CommandTemplate {
    /// Parses `argv`; the error names the offending element index and why.
    pub(crate) fn parse(argv: &[String]) -> Result<Self, (String, String)> {
        if argv.is_empty() {
            return Err((String::new(), "must not be empty".to_owned()));
        }
        let mut parsed = Vec::with_capacity(argv.len());
        for (i, arg) in argv.iter().enumerate() {
            let segments = parse_arg(arg).map_err(|m| (format!("[{i}]"), m))?;
            if arg.contains('\0') {
                return Err((format!("[{i}]"), "must not contain NUL".to_owned()));
            }
            parsed.push(segments);
        }
        let first = &parsed[0];
        let absolute = match first.first() {
            Some(Segment::Placeholder(_)) => true,
            Some(Segment::Literal(s)) => s.starts_with('/'),
            None => false,
        };
        if !absolute {
            return Err((
                "[0]".to_owned(),
                format!(
                    "program `{}` must be an absolute path (runtimes are never looked up in PATH)",
                    argv[0]
                ),
            ));
        }
        Ok(Self {
            raw: argv.to_vec(),
            parsed,
        })
    }

    /// The template as written in the TOML.
    pub fn raw(&self) -> &[String] {
        &self.raw
    }

    /// Whether any element uses `{out}` (only meaningful with a compile step).
    pub(crate) fn uses_out(&self) -> bool {
        self.parsed
            .iter()
            .flatten()
            .any(|s| *s == Segment::Placeholder(Placeholder::Out))
    }

    /// The program (argv\[0\]) when it is a literal host path, for availability checks.
    pub(crate) fn literal_program(&self) -> Option<&str> {
        match self.parsed[0].as_slice() {
            [Segment::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Expands every placeholder; each template element stays exactly one argv element.
    pub fn expand(&self, paths: &TemplatePaths) -> Vec<String> {
        self.parsed
            .iter()
            .map(|segments| {
                let mut arg = String::new();
                for segment in segments {
                    match segment {
                        Segment::Literal(s) => arg.push_str(s),
                        Segment::Placeholder(Placeholder::File) => arg.push_str(&paths.file),
                        Segment::Placeholder(Placeholder::Out) => arg.push_str(&paths.out),
                        Segment::Placeholder(Placeholder::Dir) => arg.push_str(&paths.dir),
                    }
                }
                arg
            })
            .collect()
    }
}

fn parse_arg(arg: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("unclosed `{{` in `{arg}`")),
                    }
                }
                let placeholder = match name.as_str() {
                    "file" => Placeholder::File,
                    "out" => Placeholder::Out,
                    "dir" => Placeholder::Dir,
                    other => {
                        return Err(format!(
                            "unknown placeholder `{{{other}}}` (known: {{file}}, {{out}}, {{dir}})"
                        ));
                    }
                };
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Placeholder(placeholder));
            }
            '}' => return Err(format!("unmatched `}}` in `{arg}` (write `}}}}`)")),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() || segments.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn expands_each_element_without_splitting() {
        let t = CommandTemplate::parse(&argv(&["/usr/bin/gcc", "-o{out}", "{file}", "a b {{x}}"]))
            .expect("valid");
        let paths = TemplatePaths::in_work_dir("main c.c", "main");
        assert_eq!(
            t.expand(&paths),
            argv(&["/usr/bin/gcc", "-o/work/main", "/work/main c.c", "a b {x}"])
        );
        assert!(t.uses_out());
        assert_eq!(t.literal_program(), Some("/usr/bin/gcc"));
    }

    #[test]
    fn placeholder_program_is_absolute() {
        let t = CommandTemplate::parse(&argv(&["{out}"])).expect("valid");
        assert_eq!(t.literal_program(), None);
        assert_eq!(
            t.expand(&TemplatePaths::in_work_dir("a.c", "a")),
            argv(&["/work/a"])
        );
    }

    #[test]
    fn rejects_bad_templates() {
        let err = |v: &[&str]| CommandTemplate::parse(&argv(v)).expect_err("invalid");
        assert_eq!(err(&[]).1, "must not be empty");
        assert!(err(&["python3", "{file}"]).1.contains("absolute path"));
        let (at, msg) = err(&["/bin/x", "{src}"]);
        assert_eq!(at, "[1]");
        assert!(msg.contains("unknown placeholder `{src}`"), "{msg}");
        assert!(err(&["/bin/x", "{file"]).1.contains("unclosed"));
        assert!(err(&["/bin/x", "a}"]).1.contains("unmatched"));
        assert!(err(&["/bin/x", "a\0"]).1.contains("NUL"));
    }
}
