//! Test support, not gateway code: the DUIS 5.4 XSD as an independent oracle, through
//! `xmllint`, for unit and integration tests alike.
//!
//! xmllint cannot load the published schema set as it is: the DUIS schema imports
//! `MMC Schema V5.4.xsd` (a name with spaces), and the W3C `xmldsig-core-schema.xsd` starts with
//! a DOCTYPE naming a DTD on the web. [`DuisXsd::prepare`] copies the set into a private temporary
//! directory, renames the first and strips the DOCTYPE from the second, and runs xmllint with
//! `--nonet`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use crate::testing::{anchors_dir, in_ci};

/// A private copy of the DUIS 5.4 schema set that xmllint loads offline; removed on drop.
pub struct DuisXsd {
    dir: PathBuf,
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

impl DuisXsd {
    /// The prepared schema, or `None` (saying why on stderr) when xmllint or the anchors are
    /// missing. Under `CI=true` their absence panics instead: the oracle must run there.
    pub fn prepare() -> Option<Self> {
        match Self::try_prepare() {
            Ok(xsd) => Some(xsd),
            Err(why) if in_ci() => panic!("the DUIS XSD check cannot run under CI: {why}"),
            Err(why) => {
                eprintln!("skipping the DUIS XSD check: {why}");
                None
            }
        }
    }

    fn try_prepare() -> Result<Self, String> {
        let version = Command::new("xmllint").arg("--version").output();
        if !version.is_ok_and(|out| out.status.success()) {
            return Err("xmllint is not installed".into());
        }
        let src = anchors_dir().join("schemas/duis-5.4");
        let read = |name: &str| {
            std::fs::read_to_string(src.join(name))
                .map_err(|e| format!("{}: {e}", src.join(name).display()))
        };
        let duis = read("DUIS Schema V5.4.xsd")?;
        let import = r#"schemaLocation="MMC Schema V5.4.xsd""#;
        if !duis.contains(import) {
            return Err("the DUIS schema no longer imports `MMC Schema V5.4.xsd`".into());
        }
        let duis = duis.replace(import, r#"schemaLocation="mmc.xsd""#);
        let mmc = read("MMC Schema V5.4.xsd")?;
        let dsig = strip_doctype(&read("xmldsig-core-schema.xsd")?);

        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dccgw-duis-xsd-{}-{n}", std::process::id()));
        let xsd = Self { dir };
        std::fs::create_dir_all(&xsd.dir).map_err(|e| format!("{}: {e}", xsd.dir.display()))?;
        for (name, text) in [
            ("duis.xsd", &duis),
            ("mmc.xsd", &mmc),
            ("xmldsig-core-schema.xsd", &dsig),
        ] {
            std::fs::write(xsd.dir.join(name), text).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(xsd)
    }

    /// Validates one document against the DUIS schema; the error is xmllint's report.
    pub fn validate(&self, xml: &str) -> Result<(), String> {
        self.validate_all(&[xml])
    }

    /// Validates several documents in one xmllint run; the error is xmllint's report.
    pub fn validate_all(&self, docs: &[&str]) -> Result<(), String> {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let mut paths = Vec::with_capacity(docs.len());
        for (i, doc) in docs.iter().enumerate() {
            let path = self.dir.join(format!("doc-{n}-{i}.xml"));
            std::fs::write(&path, shorten_serials(doc))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            paths.push(path);
        }
        let out = Command::new("xmllint")
            .args(["--noout", "--nonet", "--schema"])
            .arg(self.dir.join("duis.xsd"))
            .args(&paths)
            .output()
            .map_err(|e| format!("xmllint: {e}"))?;
        for path in &paths {
            let _ = std::fs::remove_file(path);
        }
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// libxml2 refuses `xs:integer` values of more than about 24 digits — a validator limit, not a
/// message error — and X.509 serials (`ds:X509SerialNumber`) are routinely 38 or more. Such a
/// value is replaced by `1` for validation only; every other byte is validated as is.
fn shorten_serials(doc: &str) -> String {
    const OPEN: &str = "X509SerialNumber>";
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(at) = rest.find(OPEN) {
        let (head, tail) = rest.split_at(at + OPEN.len());
        out.push_str(head);
        let end = tail.find('<').unwrap_or(tail.len());
        let value = &tail[..end];
        if value.len() > 18 && value.bytes().all(|b| b.is_ascii_digit()) {
            out.push('1');
        } else {
            out.push_str(value);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl Drop for DuisXsd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The document without its `<!DOCTYPE … [ … ]>` (the W3C schema's internal subset declares
/// entities it never uses).
fn strip_doctype(xml: &str) -> String {
    let Some(start) = xml.find("<!DOCTYPE") else {
        return xml.to_owned();
    };
    match xml[start..].find("]>") {
        Some(len) => format!("{}{}", &xml[..start], &xml[start + len + 2..]),
        None => xml.to_owned(),
    }
}
