//! The native language suite (`tests/languages.rs`) through the Docker executor, against a real
//! engine and the images of `scripts/docker-setup`: hello world, stdin echo, exit code with
//! stderr for JavaScript (`voidrunner/node:20`), C++ (`voidrunner/gxx:12`), Python
//! (`voidrunner/python:3.11`), Bash (`voidrunner/bash:5.2`) and C (`voidrunner/gcc:12`), plus
//! C and C++ compile errors.
//! Skips with `skipped: …` when the engine is unreachable, and fails instead under `CI=true`.
//! `VOIDRUNNER_TEST_DOCKER_SOCKET` overrides the engine socket.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voidrunner_domain::{ResourceLimits, Verdict};
use voidrunner_exec::docker::{DockerConfig, DockerExecutor};
use voidrunner_exec::{
    ExecOutcome, ExecRequest, Executor, LanguageRegistry, OutputEvent, OutputStream, Phase,
};

/// The built-in languages' commands, run in images instead of on the host.
const LANGUAGES: &str = r#"
[languages.python]
source_file = "main.py"
run = ["/usr/bin/python3", "{file}"]
env = { PYTHONUNBUFFERED = "1", PYTHONDONTWRITEBYTECODE = "1" }
executor = "docker"
image = "voidrunner/python:3.11"

[languages.javascript]
source_file = "main.js"
run = ["/usr/bin/node", "{file}"]
executor = "docker"
image = "voidrunner/node:20"

[languages.bash]
source_file = "main.sh"
run = ["/bin/bash", "{file}"]
executor = "docker"
image = "voidrunner/bash:5.2"

[languages.c]
source_file = "main.c"
run = ["{out}"]
executor = "docker"
image = "voidrunner/gcc:12"

[languages.c.compile]
command = ["/usr/bin/gcc", "-O2", "-std=gnu17", "-o", "{out}", "{file}", "-lm"]
output = "main"

[languages.cpp]
source_file = "main.cpp"
run = ["{out}"]
executor = "docker"
image = "voidrunner/gxx:12"

[languages.cpp.compile]
command = ["/usr/bin/g++", "-O2", "-std=c++17", "-o", "{out}", "{file}"]
output = "main"
"#;

/// The executor, or `None` (after printing why) when the engine is unreachable outside CI.
async fn executor(node: &str) -> Option<DockerExecutor> {
    let registry = Arc::new(LanguageRegistry::from_toml_str(LANGUAGES).expect("valid"));
    let config = DockerConfig {
        node_id: format!("docker-languages-{node}"),
        socket: std::env::var("VOIDRUNNER_TEST_DOCKER_SOCKET")
            .unwrap_or_else(|_| voidrunner_exec::docker::DEFAULT_SOCKET.to_owned()),
        ..DockerConfig::default()
    };
    let reason = match DockerExecutor::connect(registry, config).await {
        Ok(e) => match e.docker().ping().await {
            Ok(_) => return Some(e),
            Err(err) => err.to_string(),
        },
        Err(err) => err.to_string(),
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "docker engine not reachable in CI: {reason}"
    );
    println!("skipped: docker engine not reachable: {reason}");
    None
}

/// The native suite's limits (`tests/common/mod.rs`).
fn request(language: &str, code: &str, stdin: Option<&str>) -> ExecRequest {
    ExecRequest {
        language: language.to_owned(),
        code: code.to_owned(),
        stdin: stdin.map(|s| s.as_bytes().to_vec()),
        env: BTreeMap::new(),
        limits: ResourceLimits {
            timeout_secs: 20,
            memory_mb: 256,
            cpu_cores: 1.0,
            max_processes: 64,
            max_output_bytes: 1 << 20,
        },
        stdin_stream: None,
    }
}

/// One execution: its outcome and every output event.
#[derive(Debug)]
struct Ran {
    outcome: ExecOutcome,
    events: Vec<OutputEvent>,
}

impl Ran {
    fn text(&self, phase: Phase, stream: OutputStream) -> String {
        let bytes: Vec<u8> = self
            .events
            .iter()
            .filter(|e| e.phase == phase && e.stream == stream)
            .flat_map(|e| e.data.to_vec())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn stdout(&self) -> String {
        self.text(Phase::Run, OutputStream::Stdout)
    }

    fn stderr(&self) -> String {
        self.text(Phase::Run, OutputStream::Stderr)
    }
}

async fn run(node: &str, req: ExecRequest) -> Option<Ran> {
    let exec = executor(node).await?;
    let (tx, mut rx) = mpsc::channel::<OutputEvent>(256);
    let collect = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(ev) = rx.recv().await {
            events.push(ev);
        }
        events
    });
    let outcome = exec.execute(req, tx, CancellationToken::new()).await;
    let events = collect.await.expect("collector");
    Some(Ran { outcome, events })
}

/// Programs exercising one language (the native suite's).
struct Programs {
    hello: &'static str,
    echo: &'static str,
    exit3: &'static str,
}

const STDIN: &str = "line one\nline two ünïcode\n";

async fn hello_world(node: &str, language: &str, p: &Programs) {
    let Some(ran) = run(node, request(language, p.hello, None)).await else {
        return;
    };
    assert_eq!(
        ran.outcome.verdict,
        Verdict::Exited { code: 0 },
        "{language}: {ran:?}"
    );
    assert_eq!(ran.outcome.exit_code, Some(0));
    assert_eq!(ran.stdout(), "hello, world\n", "{language}");
    assert_eq!(ran.stderr(), "", "{language}");
    let run_phase = ran.outcome.phase(Phase::Run).expect("run phase");
    assert!(run_phase.wall_time > std::time::Duration::ZERO);
    assert!(!ran.outcome.output_truncated);
}

async fn stdin_echo(node: &str, language: &str, p: &Programs) {
    let Some(ran) = run(node, request(language, p.echo, Some(STDIN))).await else {
        return;
    };
    assert_eq!(
        ran.outcome.verdict,
        Verdict::Exited { code: 0 },
        "{language}: {ran:?}"
    );
    assert_eq!(ran.stdout(), STDIN, "{language}");
}

async fn exit_code_and_stderr(node: &str, language: &str, p: &Programs) {
    let Some(ran) = run(node, request(language, p.exit3, None)).await else {
        return;
    };
    assert_eq!(
        ran.outcome.verdict,
        Verdict::Exited { code: 3 },
        "{language}: {ran:?}"
    );
    assert_eq!(ran.outcome.exit_code, Some(3));
    assert_eq!(ran.stderr(), "oops\n", "{language}");
    assert_eq!(ran.stdout(), "before\n", "{language}");
}

macro_rules! language_tests {
    ($module:ident, $language:literal, $programs:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn hello_world() {
                let node = concat!(stringify!($module), "-hello");
                super::hello_world(node, $language, &$programs).await;
            }

            #[tokio::test]
            async fn stdin_echo() {
                let node = concat!(stringify!($module), "-echo");
                super::stdin_echo(node, $language, &$programs).await;
            }

            #[tokio::test]
            async fn exit_code_and_stderr() {
                let node = concat!(stringify!($module), "-exit3");
                super::exit_code_and_stderr(node, $language, &$programs).await;
            }
        }
    };
}

language_tests!(
    python,
    "python",
    Programs {
        hello: "print('hello, world')\n",
        echo: "import sys\nsys.stdout.write(sys.stdin.read())\n",
        exit3: "import sys\nprint('before')\nprint('oops', file=sys.stderr)\nsys.exit(3)\n",
    }
);

language_tests!(
    javascript,
    "javascript",
    Programs {
        hello: "console.log('hello, world');\n",
        echo: "process.stdin.pipe(process.stdout);\n",
        exit3: "console.log('before');\nconsole.error('oops');\nprocess.exitCode = 3;\n",
    }
);

language_tests!(
    bash,
    "bash",
    Programs {
        hello: "echo 'hello, world'\n",
        echo: "while IFS= read -r line; do printf '%s\\n' \"$line\"; done\n",
        exit3: "echo before\necho oops >&2\nexit 3\n",
    }
);

language_tests!(
    c,
    "c",
    Programs {
        hello: "#include <stdio.h>\nint main(void) { puts(\"hello, world\"); return 0; }\n",
        echo: "#include <stdio.h>\nint main(void) { int c; while ((c = getchar()) != EOF) putchar(c); return 0; }\n",
        exit3: "#include <stdio.h>\nint main(void) { puts(\"before\"); fflush(stdout); fputs(\"oops\\n\", stderr); return 3; }\n",
    }
);

language_tests!(
    cpp,
    "cpp",
    Programs {
        hello: "#include <iostream>\nint main() { std::cout << \"hello, world\" << std::endl; }\n",
        echo: "#include <iostream>\n#include <string>\nint main() { std::string l; while (std::getline(std::cin, l)) std::cout << l << '\\n'; }\n",
        exit3: "#include <iostream>\nint main() { std::cout << \"before\" << std::endl; std::cerr << \"oops\\n\"; return 3; }\n",
    }
);

async fn compile_error(node: &str, language: &str, code: &str, file: &str) {
    let Some(ran) = run(node, request(language, code, None)).await else {
        return;
    };
    assert_eq!(
        ran.outcome.verdict,
        Verdict::CompileError { code: 1 },
        "{language}: {ran:?}"
    );
    assert_eq!(ran.outcome.exit_code, None);
    // The compiler's message reaches the output, tagged as compile output.
    let compiler = ran.text(Phase::Compile, OutputStream::Stderr);
    assert!(
        compiler.contains("error") && compiler.contains(file),
        "{language}: compiler output was {compiler:?}"
    );
    assert!(ran.events.iter().all(|e| e.phase == Phase::Compile));
    // The program never ran.
    assert!(ran.outcome.phase(Phase::Run).is_none());
    assert_eq!(ran.outcome.phases.len(), 1);
}

#[tokio::test]
async fn c_compile_error_is_reported_with_compiler_output() {
    compile_error(
        "c-compile-error",
        "c",
        "int main(void) { return undefined_name; }\n",
        "main.c",
    )
    .await;
}

#[tokio::test]
async fn cpp_compile_error_is_reported_with_compiler_output() {
    let code = "int main() { std::vector<int> v; }\n";
    compile_error("cpp-compile-error", "cpp", code, "main.cpp").await;
}
