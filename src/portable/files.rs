//! The files of an export: reading them (with XInclude, as XEP-0227 §6
//! requires of an importer) into `<user/>` elements with their host, and
//! writing them (one document
//! per account, as Prosody writes them).
//!
//! Reading accepts:
//! - a single file whose root is `<server-data/>` (ejabberd's one-file
//!   export, or our main file);
//! - a directory: every `*.xml` in it (recursively) whose root is
//!   `<server-data/>`, following its includes; then every `<host/>` file
//!   no such file included. Prosody writes one `<server-data/>` file per
//!   user, which this covers. Files included by nothing and rooted in
//!   `<user/>` cannot be placed on a host and are reported.
//!
//! Includes must be relative and stay inside the directory being imported
//! (no absolute paths, no `..` or symlinks leading out); files are limited
//! in size, includes in depth, and documents may not carry a DTD.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::xml::{Element, NS_XML, intern};

use super::{NS_PIE, NS_PIE_OLD, NS_XINCLUDE, PortableError};

/// Larger files are refused: the whole file is parsed in memory.
pub const MAX_FILE_BYTES: u64 = 512 << 20;
/// server-data → host → user → (user data) is three levels; allow some slack.
const MAX_INCLUDE_DEPTH: usize = 6;
/// Deeper elements are refused (conversion recurses).
const MAX_ELEMENT_DEPTH: usize = 256;

/// One `<user/>` with the host it was found under.
pub struct UserEntry {
    pub host: String,
    /// The `<user/>` element, includes among its children resolved.
    pub element: Element,
    pub source: PathBuf,
}

/// Everything read, plus what was passed over and why.
#[derive(Default)]
pub struct Loaded {
    pub users: Vec<UserEntry>,
    pub notices: Vec<String>,
}

fn is_pie(node: roxmltree::Node<'_, '_>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && matches!(node.tag_name().namespace(), Some(NS_PIE) | Some(NS_PIE_OLD))
}

fn is_include(node: roxmltree::Node<'_, '_>) -> bool {
    node.is_element()
        && node.tag_name().name() == "include"
        && node.tag_name().namespace() == Some(NS_XINCLUDE)
}

fn describe(node: roxmltree::Node<'_, '_>) -> String {
    match node.tag_name().namespace() {
        Some(ns) => format!("<{} xmlns='{ns}'/>", node.tag_name().name()),
        None => format!("<{}/>", node.tag_name().name()),
    }
}

struct Reader {
    /// Canonical directory that includes must stay in.
    root: PathBuf,
    /// Canonical paths of files already read through an include.
    included: BTreeSet<PathBuf>,
    loaded: Loaded,
}

/// Reads `path` (a file or a directory) as described in the module docs.
pub fn load(path: &Path) -> Result<Loaded, PortableError> {
    let io = |e| PortableError::Io(path.to_owned(), e);
    let canonical = path.canonicalize().map_err(io)?;
    let is_dir = canonical.is_dir();
    let root = if is_dir {
        canonical.clone()
    } else {
        canonical
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"))
    };
    let mut reader = Reader {
        root,
        included: BTreeSet::new(),
        loaded: Loaded::default(),
    };
    if !is_dir {
        let text = read_text(&canonical)?;
        let doc = parse(&canonical, &text)?;
        let top = doc.root_element();
        if !is_pie(top, "server-data") {
            return Err(PortableError::Format(
                canonical,
                format!(
                    "the root element is {}, not <server-data xmlns='{NS_PIE}'/>",
                    describe(top)
                ),
            ));
        }
        reader.server_data(top, &canonical, 0)?;
        return Ok(reader.loaded);
    }
    let mut files = Vec::new();
    collect_xml_files(&canonical, &mut files, 0)?;
    files.sort();
    if files.is_empty() {
        return Err(PortableError::Format(
            canonical,
            "no .xml files in this directory".to_string(),
        ));
    }
    // Roots first, so that what they include is known before the pass
    // over stand-alone host files.
    let mut hosts = Vec::new();
    let mut users = Vec::new();
    for file in &files {
        let text = read_text(file)?;
        let doc = parse(file, &text)?;
        let top = doc.root_element();
        if is_pie(top, "server-data") {
            reader.server_data(top, file, 0)?;
        } else if is_pie(top, "host") {
            hosts.push(file.clone());
        } else if is_pie(top, "user") {
            users.push(file.clone());
        } else {
            reader.notice(format!(
                "{}: skipped, its root {} is not XEP-0227",
                file.display(),
                describe(top)
            ));
        }
    }
    for file in hosts {
        if !reader.included.contains(&file) {
            let text = read_text(&file)?;
            let doc = parse(&file, &text)?;
            reader.host(doc.root_element(), &file, 0)?;
        }
    }
    for file in users {
        if !reader.included.contains(&file) {
            reader.notice(format!(
                "{}: skipped, a <user/> file that no <host/> includes (its host is unknown)",
                file.display()
            ));
        }
    }
    Ok(reader.loaded)
}

fn collect_xml_files(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    depth: usize,
) -> Result<(), PortableError> {
    if depth > MAX_INCLUDE_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| PortableError::Io(dir.to_owned(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PortableError::Io(dir.to_owned(), e))?;
        let path = entry.path();
        // Symlinks are not followed here; an include may still name one
        // that resolves inside the directory.
        let kind = entry
            .file_type()
            .map_err(|e| PortableError::Io(path.clone(), e))?;
        if kind.is_dir() {
            collect_xml_files(&path, out, depth + 1)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
    Ok(())
}

fn read_text(path: &Path) -> Result<String, PortableError> {
    let io = |e| PortableError::Io(path.to_owned(), e);
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(PortableError::Xml(
            path.to_owned(),
            format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes)
        .map_err(|_| PortableError::Xml(path.to_owned(), "not UTF-8".to_string()))
}

fn parse<'t>(path: &Path, text: &'t str) -> Result<roxmltree::Document<'t>, PortableError> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(text, options)
        .map_err(|e| PortableError::Xml(path.to_owned(), e.to_string()))
}

impl Reader {
    fn notice(&mut self, text: String) {
        self.loaded.notices.push(text);
    }

    /// Resolves an include's `href` against the including file, keeping
    /// the result inside the import directory.
    fn resolve(
        &mut self,
        include: roxmltree::Node<'_, '_>,
        from: &Path,
    ) -> Result<PathBuf, PortableError> {
        let bad = |why: String| PortableError::Format(from.to_owned(), why);
        let href = include
            .attribute("href")
            .ok_or_else(|| bad("an <include/> without href".to_string()))?;
        if include.attribute("parse").is_some_and(|p| p != "xml")
            || include.attribute("xpointer").is_some()
        {
            return Err(bad(format!(
                "include of {href:?}: only plain XML includes are supported"
            )));
        }
        if href.contains("://") || href.starts_with('/') || href.contains('\\') {
            return Err(bad(format!(
                "include of {href:?}: only relative paths are allowed"
            )));
        }
        let decoded =
            percent_decode(href).ok_or_else(|| bad(format!("include of {href:?}: bad escape")))?;
        let base = from.parent().unwrap_or(&self.root);
        let target = base
            .join(&decoded)
            .canonicalize()
            .map_err(|e| PortableError::Io(base.join(&decoded), e))?;
        if !target.starts_with(&self.root) {
            return Err(bad(format!(
                "include of {href:?} leads outside {}",
                self.root.display()
            )));
        }
        self.included.insert(target.clone());
        Ok(target)
    }

    fn server_data(
        &mut self,
        node: roxmltree::Node<'_, '_>,
        file: &Path,
        depth: usize,
    ) -> Result<(), PortableError> {
        for child in node.children().filter(|c| c.is_element()) {
            if is_pie(child, "host") {
                self.host(child, file, depth)?;
            } else if is_include(child) {
                let path = self.included_file(child, file, depth)?;
                let text = read_text(&path)?;
                let doc = parse(&path, &text)?;
                let top = doc.root_element();
                if !is_pie(top, "host") {
                    return Err(PortableError::Format(
                        path,
                        format!(
                            "included under <server-data/> but its root is {}",
                            describe(top)
                        ),
                    ));
                }
                self.host(top, &path, depth + 1)?;
            } else {
                self.notice(format!(
                    "{}: {} under <server-data/> is not XEP-0227; skipped",
                    file.display(),
                    describe(child)
                ));
            }
        }
        Ok(())
    }

    fn included_file(
        &mut self,
        include: roxmltree::Node<'_, '_>,
        from: &Path,
        depth: usize,
    ) -> Result<PathBuf, PortableError> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(PortableError::Format(
                from.to_owned(),
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH} levels"),
            ));
        }
        self.resolve(include, from)
    }

    fn host(
        &mut self,
        node: roxmltree::Node<'_, '_>,
        file: &Path,
        depth: usize,
    ) -> Result<(), PortableError> {
        let host = node
            .attribute("jid")
            .ok_or_else(|| {
                PortableError::Format(file.to_owned(), "a <host/> without jid".to_string())
            })?
            .to_string();
        for child in node.children().filter(|c| c.is_element()) {
            if is_pie(child, "user") {
                let element = self.user(child, file, depth)?;
                self.loaded.users.push(UserEntry {
                    host: host.clone(),
                    element,
                    source: file.to_owned(),
                });
            } else if is_include(child) {
                let path = self.included_file(child, file, depth)?;
                let text = read_text(&path)?;
                let doc = parse(&path, &text)?;
                let top = doc.root_element();
                if !is_pie(top, "user") {
                    return Err(PortableError::Format(
                        path,
                        format!("included under <host/> but its root is {}", describe(top)),
                    ));
                }
                let element = self.user(top, &path, depth + 1)?;
                self.loaded.users.push(UserEntry {
                    host: host.clone(),
                    element,
                    source: path,
                });
            } else {
                self.notice(format!(
                    "{}: {} under <host jid='{host}'/> is not imported (Perch has no importer for it)",
                    file.display(),
                    describe(child)
                ));
            }
        }
        Ok(())
    }

    /// The `<user/>` element as an owned tree; includes that are its
    /// children are replaced by the included element (§6: deeper ones are
    /// user data and left alone).
    fn user(
        &mut self,
        node: roxmltree::Node<'_, '_>,
        file: &Path,
        depth: usize,
    ) -> Result<Element, PortableError> {
        let mut element = Element::new(intern(node.tag_name().name()), NS_PIE);
        copy_attributes(node, &mut element);
        for child in node.children() {
            if is_include(child) {
                let path = self.included_file(child, file, depth)?;
                let text = read_text(&path)?;
                let doc = parse(&path, &text)?;
                element.push_child(convert(doc.root_element(), &path, 1)?);
            } else if child.is_element() {
                element.push_child(convert(child, file, 1)?);
            }
        }
        Ok(element)
    }
}

fn copy_attributes(node: roxmltree::Node<'_, '_>, element: &mut Element) {
    for a in node.attributes() {
        let key = match a.namespace() {
            None => a.name().to_owned(),
            Some(NS_XML) => format!("xml:{}", a.name()),
            Some(uri) => format!("{{{uri}}}{}", a.name()),
        };
        element.attrs.push((key.into(), a.value().to_owned()));
    }
}

/// An owned copy of `node`; comments and processing instructions, which
/// other servers' files may contain, are dropped.
fn convert(
    node: roxmltree::Node<'_, '_>,
    file: &Path,
    depth: usize,
) -> Result<Element, PortableError> {
    if depth > MAX_ELEMENT_DEPTH {
        return Err(PortableError::Xml(
            file.to_owned(),
            format!("elements nested deeper than {MAX_ELEMENT_DEPTH} levels"),
        ));
    }
    let tag = node.tag_name();
    let mut element = Element::new(intern(tag.name()), intern(tag.namespace().unwrap_or("")));
    copy_attributes(node, &mut element);
    for child in node.children() {
        if child.is_element() {
            element.push_child(convert(child, file, depth + 1)?);
        } else if let Some(text) = child.text().filter(|_| child.is_text()) {
            element.push_text(text);
        }
    }
    Ok(element)
}

/// Decodes `%XX` escapes of a relative URI reference.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------
// Writing.

/// A file name for a host or a user: the name itself when it is safe and
/// short, else a hash of it (the XEP lets importers rely on includes only).
pub fn file_stem(name: &str) -> String {
    let safe = !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| !c.is_control() && !matches!(c, '/' | '\\' | '%' | '#' | '?'));
    if safe {
        name.to_string()
    } else {
        let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
        let hex: String = digest
            .as_ref()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("x-{hex}")
    }
}

/// Creates `dir` (owner-only, as the XEP's security section asks) or
/// accepts it when it exists and is empty.
pub fn prepare_directory(dir: &Path) -> Result<(), PortableError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(PortableError::NotEmpty(dir.to_owned()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| PortableError::Io(dir.to_owned(), e)),
        Err(e) => Err(PortableError::Io(dir.to_owned(), e)),
    }
}

/// Writes `element` as a document, owner-readable only.
pub fn write_document(path: &Path, element: &Element) -> Result<(), PortableError> {
    let io = |e| PortableError::Io(path.to_owned(), e);
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let mut bytes = b"<?xml version='1.0' encoding='UTF-8'?>\n".to_vec();
    element.write_to(&mut bytes, "");
    bytes.push(b'\n');
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("juliet"), "juliet");
        assert_eq!(file_stem("capulet.lit"), "capulet.lit");
        assert_eq!(file_stem("café"), "café");
        for unsafe_name in ["", ".", "..", ".hidden", "a/b", "a%2Fb", &"x".repeat(201)] {
            let stem = file_stem(unsafe_name);
            assert!(
                stem.starts_with("x-") && stem.len() == 34,
                "{unsafe_name:?} → {stem}"
            );
        }
        assert_ne!(file_stem("a/b"), file_stem("a\\b"));
    }

    #[test]
    fn hrefs_are_percent_decoded() {
        assert_eq!(percent_decode("h/a%20b.xml").as_deref(), Some("h/a b.xml"));
        assert_eq!(percent_decode("h/%C3%A9.xml").as_deref(), Some("h/é.xml"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
    }
}
