//! The language registry: which languages exist, how to compile and run them, and whether this
//! host can. Built-in defaults come from an embedded TOML; an operator file replaces, adds or
//! disables entries by name. The API validates task languages against it, `voidrunner doctor`
//! prints it, and the executors read commands from it.

mod detect;
mod spec;
mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use detect::{Availability, VERSION_TIMEOUT};
pub use template::{CommandTemplate, TemplatePaths, WORK_DIR};

use spec::LanguageSpec;
pub(crate) use spec::check_env;

/// The built-in language table, embedded in the binary.
pub const BUILTIN_TOML: &str = include_str!("../languages.toml");

/// Which executor runs a language. Only `native` runs in this build; `docker` entries parse
/// (so operators can prepare them) and are reported unavailable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    /// The native Linux sandbox with host runtimes.
    #[default]
    Native,
    /// A container per execution (issue 6).
    Docker,
}

/// Limits of the compile phase: compilers need more memory, processes and time than most
/// programs, and the task's limits are about the user's program, not the toolchain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompileLimits {
    /// Wall-clock timeout of the compiler.
    pub timeout_secs: u32,
    /// Memory limit of the compiler.
    pub memory_mb: u32,
    /// Processes the compiler driver may start (cc1, as, ld …).
    pub max_processes: u32,
    /// CPU bandwidth of the compiler.
    pub cpu_cores: f64,
    /// Compiler output kept (the rest is cut).
    pub max_output_bytes: u64,
}

impl CompileLimits {
    fn default_timeout_secs() -> u32 {
        30
    }
    fn default_memory_mb() -> u32 {
        512
    }
    fn default_max_processes() -> u32 {
        32
    }
    fn default_cpu_cores() -> f64 {
        1.0
    }
    fn default_max_output_bytes() -> u64 {
        64 * 1024
    }
}

impl Default for CompileLimits {
    fn default() -> Self {
        Self {
            timeout_secs: Self::default_timeout_secs(),
            memory_mb: Self::default_memory_mb(),
            max_processes: Self::default_max_processes(),
            cpu_cores: Self::default_cpu_cores(),
            max_output_bytes: Self::default_max_output_bytes(),
        }
    }
}

/// The compile step of a compiled language.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileStep {
    /// Compiler argv template.
    pub command: CommandTemplate,
    /// File name of the artifact (`{out}`), relative to the work directory.
    pub output: String,
    /// Extra environment of the compiler.
    pub env: BTreeMap<String, String>,
    /// The compiler's own limits.
    pub limits: CompileLimits,
}

/// Where a language's version comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VersionSource {
    Fixed(String),
    Command(Vec<String>),
}

/// One language, validated. Availability and version are detected lazily, once.
#[derive(Debug, Clone)]
pub struct Language {
    /// Registry name (the TOML table key), e.g. `python`.
    pub name: String,
    /// Human-readable name, e.g. `Python 3`.
    pub display_name: String,
    /// Other names accepted in requests, e.g. `py`.
    pub aliases: Vec<String>,
    /// File name the code is written to in the work directory, e.g. `main.py`.
    pub source_file: String,
    /// The host program whose presence and version define availability.
    pub runtime: Option<PathBuf>,
    /// Compile step, for compiled languages.
    pub compile: Option<CompileStep>,
    /// Run argv template.
    pub run: CommandTemplate,
    /// Extra environment of the run phase (below the task's own variables).
    pub env: BTreeMap<String, String>,
    /// Which executor runs it.
    pub executor: ExecutorKind,
    /// Container image (Docker executor only).
    pub image: Option<String>,
    version_source: VersionSource,
    detection: OnceLock<Availability>,
}

impl Language {
    /// Whether this host can run the language, detecting it on first call (may take up to
    /// [`VERSION_TIMEOUT`]); later calls return the cached answer.
    pub fn availability(&self) -> &Availability {
        self.detection.get_or_init(|| detect::detect(self))
    }

    /// The detected version, or `None` when unavailable.
    pub fn version(&self) -> Option<&str> {
        match self.availability() {
            Availability::Available { version } => Some(version),
            Availability::Unavailable { .. } => None,
        }
    }

    /// The host programs this language needs (runtime, compiler, interpreter), i.e. every
    /// literal argv\[0\]; programs built in the workspace (`{out}`) are not listed.
    pub fn host_programs(&self) -> Vec<&Path> {
        let mut programs: Vec<&Path> = Vec::new();
        programs.extend(self.runtime.as_deref());
        if let Some(c) = &self.compile {
            programs.extend(c.command.literal_program().map(Path::new));
        }
        programs.extend(self.run.literal_program().map(Path::new));
        programs.dedup();
        programs
    }

    /// Paths the templates of this language expand to.
    pub fn template_paths(&self) -> TemplatePaths {
        let out = self.compile.as_ref().map_or("main", |c| c.output.as_str());
        TemplatePaths::in_work_dir(&self.source_file, out)
    }
}

/// A summary of one available language, for API listings (`/runtimes`) and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguageInfo {
    /// Registry name.
    pub name: String,
    /// Human-readable name.
    pub display_name: String,
    /// Accepted aliases.
    pub aliases: Vec<String>,
    /// Detected version.
    pub version: String,
    /// Runs can take live stdin (`interactive`): the native sandbox can, the Docker executor
    /// cannot.
    pub interactive: bool,
}

/// Invalid registry TOML or operator file. Messages name the language and the field.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not valid TOML, or a top-level key is wrong.
    #[error("invalid language registry TOML: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A field of one language entry is invalid.
    #[error("language `{language}`{}: {message}", field_suffix(.field))]
    Invalid {
        /// Language name (the table key).
        language: String,
        /// Path of the field inside the entry, e.g. `compile.memory_mb`; empty for the entry.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The operator file could not be read.
    #[error("cannot read language file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// An error inside the operator file.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: Box<RegistryError>,
    },
}

fn field_suffix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!(", field `{field}`")
    }
}

/// The whole file: `[languages.<name>]` tables and an optional `disabled` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    languages: BTreeMap<String, toml::Value>,
    #[serde(default)]
    disabled: Vec<String>,
}

/// All configured languages, looked up by name or alias.
#[derive(Debug, Clone)]
pub struct LanguageRegistry {
    languages: BTreeMap<String, Language>,
    /// Lower-case name or alias → language name.
    lookup: BTreeMap<String, String>,
    /// Raw specs, kept so operator files can be merged on top.
    specs: BTreeMap<String, LanguageSpec>,
}

impl LanguageRegistry {
    /// The built-in languages (python, javascript, bash, c, cpp).
    pub fn builtin() -> Self {
        // The embedded TOML is fixed at build time and checked by a unit test.
        Self::from_toml_str(BUILTIN_TOML).expect("built-in languages.toml is valid")
    }

    /// A registry made only of the languages in `toml` (no built-ins).
    pub fn from_toml_str(toml: &str) -> Result<Self, RegistryError> {
        Self::build(BTreeMap::new(), toml)
    }

    /// The built-ins merged with an operator file (see [`LanguageRegistry::merge_toml_str`]).
    pub fn with_overrides(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::builtin()
            .merge_toml_str(&text)
            .map_err(|e| RegistryError::InFile {
                path: path.to_owned(),
                source: Box::new(e),
            })
    }

    /// Merges `toml` on top of this registry: an entry replaces the one of the same name
    /// entirely, new names are added, and names listed in `disabled` are removed.
    pub fn merge_toml_str(self, toml: &str) -> Result<Self, RegistryError> {
        Self::build(self.specs, toml)
    }

    fn build(mut specs: BTreeMap<String, LanguageSpec>, toml: &str) -> Result<Self, RegistryError> {
        let file: RegistryFile = toml::from_str(toml)?;
        for (name, value) in file.languages {
            let spec = LanguageSpec::from_value(&name, value)?;
            specs.insert(name, spec);
        }
        for (i, name) in file.disabled.iter().enumerate() {
            if specs.remove(name).is_none() {
                return Err(RegistryError::Invalid {
                    language: name.clone(),
                    field: format!("disabled[{i}]"),
                    message: "no such language to disable".to_owned(),
                });
            }
        }
        let mut languages = BTreeMap::new();
        let mut lookup: BTreeMap<String, String> = BTreeMap::new();
        for (name, spec) in &specs {
            let lang = spec.clone().validate(name)?;
            for (i, key) in std::iter::once(&lang.name).chain(&lang.aliases).enumerate() {
                if let Some(other) = lookup.insert(key.clone(), name.clone()) {
                    let field = if i == 0 {
                        "name".to_owned()
                    } else {
                        format!("aliases[{}]", i - 1)
                    };
                    return Err(RegistryError::Invalid {
                        language: name.clone(),
                        field,
                        message: format!("`{key}` is already used by language `{other}`"),
                    });
                }
            }
            languages.insert(name.clone(), lang);
        }
        Ok(Self {
            languages,
            lookup,
            specs,
        })
    }

    /// The language with this name or alias (case-insensitive), whether or not it is
    /// available on this host.
    pub fn get(&self, name_or_alias: &str) -> Option<&Language> {
        let key = name_or_alias.trim().to_ascii_lowercase();
        self.lookup.get(&key).and_then(|n| self.languages.get(n))
    }

    /// Every configured language name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.languages.keys().map(String::as_str).collect()
    }

    /// Every configured language, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Language> {
        self.languages.values()
    }

    /// Detects every language's runtime now, in parallel (each at most [`VERSION_TIMEOUT`]),
    /// so that startup pays the cost once instead of the first request.
    pub fn detect_all(&self) {
        std::thread::scope(|s| {
            for lang in self.languages.values() {
                s.spawn(move || {
                    let _ = lang.availability();
                });
            }
        });
    }

    /// The languages this host can run, with their versions, sorted by name.
    pub fn available(&self) -> Vec<LanguageInfo> {
        self.detect_all();
        self.languages
            .values()
            .filter_map(|l| {
                l.version().map(|v| LanguageInfo {
                    name: l.name.clone(),
                    display_name: l.display_name.clone(),
                    aliases: l.aliases.clone(),
                    version: v.to_owned(),
                    interactive: l.executor == ExecutorKind::Native,
                })
            })
            .collect()
    }

    /// Every language with its availability (including why it is unavailable), for `doctor`.
    pub fn report(&self) -> Vec<(&Language, &Availability)> {
        self.detect_all();
        self.languages
            .values()
            .map(|l| (l, l.availability()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
