//! Tarball sources: a tar archive, gzip-compressed or not (detected from its first bytes).
//! Every entry is checked before anything is written: no absolute path, no `..`, only
//! regular files, directories and links that stay inside; devices, FIFOs and other types
//! are refused; total size and entry count are capped from the headers, before the data is
//! read. Writing goes through `unpack_in`, which also refuses to write through a link.
//! The first refused entry stops the extraction with its path in the reason.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use tar::EntryType;

use super::walk::{Budget, link_stays_inside, stays_inside};
use super::{Prepared, SourceError, SourcePolicy};

pub(crate) fn extract(
    archive: &Path,
    dest: &Path,
    policy: &SourcePolicy,
) -> Result<Prepared, SourceError> {
    let mut file = File::open(archive)
        .map_err(|e| SourceError::Failed(format!("opening the uploaded archive: {e}")))?;
    let mut magic = [0u8; 2];
    let gz = file.read(&mut magic).is_ok_and(|n| n == 2) && magic == [0x1f, 0x8b];
    let file = File::open(archive)
        .map_err(|e| SourceError::Failed(format!("opening the uploaded archive: {e}")))?;
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(false);
    tar.set_preserve_mtime(true);
    tar.set_unpack_xattrs(false);
    tar.set_overwrite(true);
    let bad = |e: std::io::Error| SourceError::Failed(format!("not a valid tar archive: {e}"));
    let mut budget = Budget::new(policy);
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let shown = path.display().to_string();
        let refuse = |why: &str| {
            Err(SourceError::Refused(format!(
                "archive entry {shown:?}: {why}"
            )))
        };
        if path.is_absolute() {
            return refuse("absolute path");
        }
        if path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return refuse("'..' in the path");
        }
        if !stays_inside(&path) || path.as_os_str().is_empty() {
            return refuse("not a path inside the archive root");
        }
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {}
            EntryType::Symlink | EntryType::Link => {
                let Some(target) = entry.link_name().map_err(bad)? else {
                    return refuse("link without a target");
                };
                let inside = if kind == EntryType::Symlink {
                    link_stays_inside(&path, &target)
                } else {
                    // Hard links name a path from the archive root.
                    !target.is_absolute()
                        && !target
                            .components()
                            .any(|c| c == std::path::Component::ParentDir)
                };
                if !inside {
                    return refuse(&format!(
                        "link to {:?} points outside the archive",
                        target.display()
                    ));
                }
            }
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => continue,
            EntryType::Char => return refuse("character devices are not allowed"),
            EntryType::Block => return refuse("block devices are not allowed"),
            EntryType::Fifo => return refuse("FIFOs are not allowed"),
            other => return refuse(&format!("entry type {other:?} is not allowed")),
        }
        let size = if kind.is_file() {
            entry.header().size().map_err(bad)?
        } else {
            0
        };
        budget.take(size)?;
        let written = entry.unpack_in(dest).map_err(|e| {
            SourceError::Refused(format!("archive entry {shown:?} cannot be written: {e}"))
        })?;
        if !written {
            return refuse("would be written outside the destination");
        }
    }
    Ok(Prepared {
        bytes: budget.bytes,
        entries: budget.entries,
        commit: None,
    })
}
