//! The TOML shape of a language entry and its validation into a [`Language`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;

use super::template::CommandTemplate;
use super::{CompileLimits, CompileStep, ExecutorKind, Language, RegistryError, VersionSource};

/// One `[languages.<name>]` table as written by the operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LanguageSpec {
    display_name: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    source_file: String,
    runtime: Option<String>,
    version: Option<String>,
    version_command: Option<Vec<String>>,
    compile: Option<CompileSpec>,
    run: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    executor: ExecutorKind,
    image: Option<String>,
}

/// `[languages.<name>.compile]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompileSpec {
    command: Vec<String>,
    #[serde(default = "default_output")]
    output: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default = "CompileLimits::default_timeout_secs")]
    timeout_secs: u32,
    #[serde(default = "CompileLimits::default_memory_mb")]
    memory_mb: u32,
    #[serde(default = "CompileLimits::default_max_processes")]
    max_processes: u32,
    #[serde(default = "CompileLimits::default_cpu_cores")]
    cpu_cores: f64,
    #[serde(default = "CompileLimits::default_max_output_bytes")]
    max_output_bytes: u64,
}

fn default_output() -> String {
    "main".to_owned()
}

impl LanguageSpec {
    /// Deserializes one entry; errors name the language and the path of the field.
    pub(super) fn from_value(name: &str, value: toml::Value) -> Result<Self, RegistryError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            // The toml deserializer appends "in `key`"; the field is named by the path already.
            let inner = e.into_inner().to_string();
            let message = inner.lines().next().unwrap_or_default().trim().to_owned();
            RegistryError::Invalid {
                language: name.to_owned(),
                field: if field == "." { String::new() } else { field },
                message,
            }
        })
    }

    /// Checks every field and builds the language.
    pub(super) fn validate(self, name: &str) -> Result<Language, RegistryError> {
        let invalid = |field: &str, message: String| RegistryError::Invalid {
            language: name.to_owned(),
            field: field.to_owned(),
            message,
        };
        check_name(name).map_err(|m| invalid("name", m))?;
        for (i, alias) in self.aliases.iter().enumerate() {
            check_name(alias).map_err(|m| invalid(&format!("aliases[{i}]"), m))?;
        }
        check_file_name(&self.source_file).map_err(|m| invalid("source_file", m))?;
        check_env(&self.env).map_err(|(k, m)| invalid(&format!("env.{k}"), m))?;
        let run =
            CommandTemplate::parse(&self.run).map_err(|(at, m)| invalid(&format!("run{at}"), m))?;
        let compile = match self.compile {
            None => {
                if run.uses_out() {
                    return Err(invalid(
                        "run",
                        "uses {out} but the language has no compile step".to_owned(),
                    ));
                }
                None
            }
            Some(c) => Some(c.validate(name, &self.source_file)?),
        };
        if self.executor == ExecutorKind::Docker && self.image.is_none() {
            return Err(invalid(
                "image",
                "is required when executor = \"docker\"".to_owned(),
            ));
        }
        let runtime = match &self.runtime {
            Some(r) if !r.starts_with('/') => {
                return Err(invalid(
                    "runtime",
                    format!("`{r}` must be an absolute path"),
                ));
            }
            Some(r) => Some(PathBuf::from(r)),
            None => compile
                .as_ref()
                .map_or(&run, |c: &CompileStep| &c.command)
                .literal_program()
                .map(PathBuf::from),
        };
        let version = match (self.version, self.version_command) {
            (Some(v), None) => VersionSource::Fixed(v),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "version_command",
                    "cannot be combined with a fixed `version`".to_owned(),
                ));
            }
            (None, Some(cmd)) => {
                CommandTemplate::parse(&cmd)
                    .map_err(|(at, m)| invalid(&format!("version_command{at}"), m))?;
                VersionSource::Command(cmd)
            }
            (None, None) => match &runtime {
                Some(r) => {
                    VersionSource::Command(vec![r.display().to_string(), "--version".to_owned()])
                }
                None => {
                    return Err(invalid(
                        "runtime",
                        "is required when the program is not a literal path".to_owned(),
                    ));
                }
            },
        };
        Ok(Language {
            name: name.to_owned(),
            display_name: self.display_name.unwrap_or_else(|| name.to_owned()),
            aliases: self.aliases,
            source_file: self.source_file,
            runtime,
            compile,
            run,
            env: self.env,
            executor: self.executor,
            image: self.image,
            version_source: version,
            detection: OnceLock::new(),
        })
    }
}

impl CompileSpec {
    fn validate(self, name: &str, source_file: &str) -> Result<CompileStep, RegistryError> {
        let invalid = |field: &str, message: String| RegistryError::Invalid {
            language: name.to_owned(),
            field: format!("compile.{field}"),
            message,
        };
        let command = CommandTemplate::parse(&self.command)
            .map_err(|(at, m)| invalid(&format!("command{at}"), m))?;
        check_file_name(&self.output).map_err(|m| invalid("output", m))?;
        if self.output == source_file {
            return Err(invalid("output", "must differ from source_file".to_owned()));
        }
        check_env(&self.env).map_err(|(k, m)| invalid(&format!("env.{k}"), m))?;
        let in_range = |field: &str, v: f64, min: f64, max: f64| {
            if v.is_finite() && (min..=max).contains(&v) {
                Ok(())
            } else {
                Err(invalid(field, format!("must be between {min} and {max}")))
            }
        };
        in_range("timeout_secs", self.timeout_secs.into(), 1.0, 3600.0)?;
        in_range("memory_mb", self.memory_mb.into(), 8.0, 65536.0)?;
        in_range("max_processes", self.max_processes.into(), 1.0, 4096.0)?;
        in_range("cpu_cores", self.cpu_cores, 0.01, 64.0)?;
        #[expect(clippy::cast_precision_loss, reason = "byte limits are far below 2^52")]
        in_range(
            "max_output_bytes",
            self.max_output_bytes as f64,
            1024.0,
            1e9,
        )?;
        Ok(CompileStep {
            command,
            output: self.output,
            env: self.env,
            limits: CompileLimits {
                timeout_secs: self.timeout_secs,
                memory_mb: self.memory_mb,
                max_processes: self.max_processes,
                cpu_cores: self.cpu_cores,
                max_output_bytes: self.max_output_bytes,
            },
        })
    }
}

/// Language names and aliases: lower-case ASCII letters, digits and `+ # . _ -`, so they are
/// safe in URLs, file names and logs.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '#' | '.' | '_' | '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must be 1-32 characters of a-z, 0-9, `+`, `#`, `.`, `_`, `-`"
        ))
    }
}

fn check_file_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
        && name.len() <= 255;
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` must be a plain file name (no `/`)"))
    }
}

/// Environment names must be usable by `execve`: non-empty, no `=` or NUL; values no NUL.
pub(crate) fn check_env(env: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    for (k, v) in env {
        if k.is_empty() || k.contains(['=', '\0']) {
            return Err((k.clone(), "invalid variable name".to_owned()));
        }
        if v.contains('\0') {
            return Err((k.clone(), "value must not contain NUL".to_owned()));
        }
    }
    Ok(())
}
