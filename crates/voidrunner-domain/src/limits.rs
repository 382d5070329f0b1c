//! Resource limits of a run, with operator-configured defaults and hard maxima.

use serde::{Deserialize, Serialize};

/// The limits one execution runs under. Every field is always set: limits are never "off".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Wall-clock timeout.
    pub timeout_secs: u32,
    /// Memory limit (swap is never allowed on top of it).
    pub memory_mb: u32,
    /// CPU bandwidth in cores (0.5 = half a core).
    pub cpu_cores: f64,
    /// Maximum number of processes/threads alive at once.
    pub max_processes: u32,
    /// Maximum stdout+stderr bytes kept; the program is stopped when it writes more.
    pub max_output_bytes: u64,
}

/// Limits as a client may send them: every field optional, missing ones take the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialLimits {
    /// See [`ResourceLimits::timeout_secs`].
    pub timeout_secs: Option<u32>,
    /// See [`ResourceLimits::memory_mb`].
    pub memory_mb: Option<u32>,
    /// See [`ResourceLimits::cpu_cores`].
    pub cpu_cores: Option<f64>,
    /// See [`ResourceLimits::max_processes`].
    pub max_processes: Option<u32>,
    /// See [`ResourceLimits::max_output_bytes`].
    pub max_output_bytes: Option<u64>,
}

/// A limit outside what the operator allows; `field` names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LimitError {
    /// Field name as the API spells it, e.g. `limits.memory_mb`.
    pub field: &'static str,
    /// Human-readable reason.
    pub message: String,
}

/// Operator configuration: the defaults applied to missing fields and the maxima no request
/// may exceed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LimitBounds {
    /// Used for fields the client leaves out.
    pub defaults: ResourceLimits,
    /// Inclusive upper bounds.
    pub maxima: ResourceLimits,
}

impl Default for LimitBounds {
    fn default() -> Self {
        Self {
            defaults: ResourceLimits {
                timeout_secs: 10,
                memory_mb: 256,
                cpu_cores: 1.0,
                max_processes: 64,
                max_output_bytes: 1024 * 1024,
            },
            maxima: ResourceLimits {
                timeout_secs: 300,
                memory_mb: 4096,
                cpu_cores: 4.0,
                max_processes: 512,
                max_output_bytes: 16 * 1024 * 1024,
            },
        }
    }
}

impl LimitBounds {
    /// Fills missing fields from the defaults and checks every field is within
    /// `[minimum, maximum]`.
    pub fn resolve(&self, input: &PartialLimits) -> Result<ResourceLimits, LimitError> {
        let d = &self.defaults;
        let m = &self.maxima;
        let limits = ResourceLimits {
            timeout_secs: input.timeout_secs.unwrap_or(d.timeout_secs),
            memory_mb: input.memory_mb.unwrap_or(d.memory_mb),
            cpu_cores: input.cpu_cores.unwrap_or(d.cpu_cores),
            max_processes: input.max_processes.unwrap_or(d.max_processes),
            max_output_bytes: input.max_output_bytes.unwrap_or(d.max_output_bytes),
        };
        check_range(
            "limits.timeout_secs",
            limits.timeout_secs.into(),
            1.0,
            m.timeout_secs.into(),
        )?;
        check_range(
            "limits.memory_mb",
            limits.memory_mb.into(),
            8.0,
            m.memory_mb.into(),
        )?;
        check_range("limits.cpu_cores", limits.cpu_cores, 0.01, m.cpu_cores)?;
        check_range(
            "limits.max_processes",
            limits.max_processes.into(),
            1.0,
            m.max_processes.into(),
        )?;
        #[expect(clippy::cast_precision_loss, reason = "byte limits are far below 2^52")]
        check_range(
            "limits.max_output_bytes",
            limits.max_output_bytes as f64,
            1024.0,
            m.max_output_bytes as f64,
        )?;
        Ok(limits)
    }
}

fn check_range(field: &'static str, value: f64, min: f64, max: f64) -> Result<(), LimitError> {
    if !value.is_finite() || value < min || value > max {
        return Err(LimitError {
            field,
            message: format!("must be between {min} and {max}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_defaults() {
        let b = LimitBounds::default();
        assert_eq!(b.resolve(&PartialLimits::default()), Ok(b.defaults));
    }

    #[test]
    fn over_maximum_names_the_field() {
        let b = LimitBounds::default();
        let err = b
            .resolve(&PartialLimits {
                memory_mb: Some(1 << 20),
                ..Default::default()
            })
            .expect_err("over max");
        assert_eq!(err.field, "limits.memory_mb");
        let err = b
            .resolve(&PartialLimits {
                cpu_cores: Some(f64::NAN),
                ..Default::default()
            })
            .expect_err("nan");
        assert_eq!(err.field, "limits.cpu_cores");
        let err = b
            .resolve(&PartialLimits {
                timeout_secs: Some(0),
                ..Default::default()
            })
            .expect_err("zero timeout");
        assert_eq!(err.field, "limits.timeout_secs");
    }
}
