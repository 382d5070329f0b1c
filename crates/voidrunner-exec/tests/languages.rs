//! Language tests through the native executor and the real sandbox: hello world, stdin echo,
//! exit code with stderr, for every built-in language, plus compile errors.

mod common;

use common::{request, run};
use voidrunner_domain::Verdict;
use voidrunner_exec::{OutputStream, Phase};

/// Programs exercising one language.
struct Programs {
    hello: &'static str,
    echo: &'static str,
    exit3: &'static str,
}

const STDIN: &str = "line one\nline two ünïcode\n";

async fn hello_world(language: &str, p: &Programs) {
    let ran = run(request(language, p.hello, None)).await;
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

async fn stdin_echo(language: &str, p: &Programs) {
    let ran = run(request(language, p.echo, Some(STDIN))).await;
    assert_eq!(
        ran.outcome.verdict,
        Verdict::Exited { code: 0 },
        "{language}: {ran:?}"
    );
    assert_eq!(ran.stdout(), STDIN, "{language}");
}

async fn exit_code_and_stderr(language: &str, p: &Programs) {
    let ran = run(request(language, p.exit3, None)).await;
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
                super::hello_world($language, &$programs).await;
            }

            #[tokio::test]
            async fn stdin_echo() {
                super::stdin_echo($language, &$programs).await;
            }

            #[tokio::test]
            async fn exit_code_and_stderr() {
                super::exit_code_and_stderr($language, &$programs).await;
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
    "js",
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
    "c++",
    Programs {
        hello: "#include <iostream>\nint main() { std::cout << \"hello, world\" << std::endl; }\n",
        echo: "#include <iostream>\n#include <string>\nint main() { std::string l; while (std::getline(std::cin, l)) std::cout << l << '\\n'; }\n",
        exit3: "#include <iostream>\nint main() { std::cout << \"before\" << std::endl; std::cerr << \"oops\\n\"; return 3; }\n",
    }
);

async fn compile_error(language: &str, code: &str, file: &str) {
    let ran = run(request(language, code, None)).await;
    let Verdict::CompileError { code } = ran.outcome.verdict else {
        panic!("{language}: expected a compile error, got {ran:?}");
    };
    assert_ne!(code, 0);
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
    compile_error("c", "int main(void) { return undefined_name; }\n", "main.c").await;
}

#[tokio::test]
async fn cpp_compile_error_is_reported_with_compiler_output() {
    compile_error("cpp", "int main() { std::vector<int> v; }\n", "main.cpp").await;
}

#[tokio::test]
async fn compiled_program_reports_both_phases() {
    let ran = run(request(
        "c",
        "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
        None,
    ))
    .await;
    assert_eq!(ran.outcome.verdict, Verdict::Exited { code: 0 }, "{ran:?}");
    let phases: Vec<_> = ran.outcome.phases.iter().map(|p| p.phase).collect();
    assert_eq!(phases, [Phase::Compile, Phase::Run]);
    assert_eq!(
        ran.outcome.phases[0].verdict,
        Verdict::Exited { code: 0 },
        "compiler exited 0"
    );
    // Top-level measurements are those of the run phase.
    assert_eq!(ran.outcome.wall_time, ran.outcome.phases[1].wall_time);
}
