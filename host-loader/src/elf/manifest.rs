//! Finds and decodes the manifest from the file's bytes.

use super::{ElfError, ElfView, Malformed};
use plugin_manifest::{MANIFEST_SECTION, MANIFEST_SYMBOL, Manifest, record};

/// Reads the manifest records from the `.plugin_manifest` section and assembles them.
///
/// Also checks that the exported `PLUGIN_MANIFEST` symbol points into that section, so the
/// manifest the host reads is the one the plugin's own code can reach.
pub fn read_manifest(view: &ElfView<'_>) -> Result<Manifest, ElfError> {
    let section = view
        .section(MANIFEST_SECTION)?
        .ok_or(ElfError::NoManifest {
            section: MANIFEST_SECTION,
        })?;
    let records = record::parse_section(section)?;
    let manifest = Manifest::from_records(&records)?;
    let range = view.section_range(MANIFEST_SECTION).unwrap_or(0..0);
    let symbol = view
        .dynamic_symbols()
        .find(|s| s.name == MANIFEST_SYMBOL.as_bytes() && s.is_defined());
    match symbol {
        Some(symbol) if range.contains(&symbol.value) => Ok(manifest),
        Some(_) => Err(ElfError::malformed(
            Malformed::Inconsistent,
            format!(
                "exported symbol {MANIFEST_SYMBOL} does not point into the {MANIFEST_SECTION} section"
            ),
        )),
        None => Err(ElfError::malformed(
            Malformed::Inconsistent,
            format!(
                "the {MANIFEST_SECTION} section is present but the {MANIFEST_SYMBOL} symbol is not exported"
            ),
        )),
    }
}
