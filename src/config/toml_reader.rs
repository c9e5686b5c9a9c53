//! A typed reader over the document `toml` parses, from which each config
//! section reads its keys and checks their values in one pass.
//!
//! Serde's derived deserializers did this before: about 170 KiB of machine
//! code (x86-64 musl) for a file read once at start, which on a small
//! board mostly stays resident. These few getters do the same job.
//!
//! Every getter takes its key out of the table, so whatever is left when the
//! table is finished is unknown; the keys asked for, in the order asked, are
//! the alternatives an unknown key's message offers. Problems (a wrong type,
//! a missing required key, an unknown key, and the value problems a section
//! reports through [`TableReader::problem`]) are collected rather than
//! returned at the first: a value with a problem reads as absent, so the
//! rest of the file is still read and checked.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeArray, DeInteger, DeTable, DeValue};

/// A problem with the file at a byte span of the text; the caller adds the
/// `file:line:` prefix.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Problem {
    pub span: Range<usize>,
    pub message: String,
}

/// Reads a parsed document with `read` and returns what it built together
/// with every problem found, in the order found.
pub(super) fn read_document<'i, T>(
    document: Spanned<DeTable<'i>>,
    read: impl FnOnce(&mut TableReader<'i, '_>) -> T,
) -> (T, Vec<Problem>) {
    let mut problems = Vec::new();
    let span = document.span();
    let mut top = TableReader {
        entries: document.into_inner(),
        span,
        path: String::new(),
        kind: TableKind::TopLevel,
        asked: Vec::new(),
        problems: &mut problems,
    };
    let value = read(&mut top);
    top.finish();
    (value, problems)
}

/// How a table appears in the file, which is how messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableKind {
    TopLevel,
    /// `[name]`
    Table,
    /// One `[[name]]` of an array of tables.
    ArrayElement,
}

/// One table being read. Obtained from [`read_document`], [`TableReader::table`]
/// or [`TableReader::tables`], which also check it for unknown keys once the
/// read function returns.
pub(super) struct TableReader<'i, 'p> {
    entries: DeTable<'i>,
    span: Range<usize>,
    /// The dotted key path of this table (empty at the top level), which
    /// prefixes keys in messages: `listener.port`.
    path: String,
    kind: TableKind,
    /// The keys asked for so far, in order: the known keys.
    asked: Vec<&'static str>,
    problems: &'p mut Vec<Problem>,
}

impl<'i> TableReader<'i, '_> {
    /// Where the table starts in the text (a `[[host]]`'s header, say), for
    /// problems with the table as a whole.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// Reports a problem with a value this table's reader has checked.
    pub fn problem(&mut self, span: Range<usize>, message: impl std::fmt::Display) {
        self.report(span, message.to_string());
    }

    /// An optional string.
    pub fn string(&mut self, key: &'static str) -> Option<Spanned<String>> {
        let value = self.take(key)?;
        self.expect_string(key, value)
    }

    /// A string the table must have.
    pub fn required_string(&mut self, key: &'static str) -> Option<Spanned<String>> {
        let present = self.entries.contains_key(key);
        let value = self.string(key);
        if !present {
            let message = format!("missing required key '{key}' {}", self.name());
            self.report(self.span.clone(), message);
        }
        value
    }

    /// An optional integer; TOML integers are 64-bit, so any that parsed fits.
    pub fn integer(&mut self, key: &'static str) -> Option<Spanned<i64>> {
        let value = self.take(key)?;
        let span = value.span();
        let DeValue::Integer(integer) = value.get_ref() else {
            self.wrong_type(key, "an integer", value);
            return None;
        };
        match integer_value(integer) {
            Some(number) => Some(Spanned::new(span, number)),
            None => {
                let message = format!(
                    "{}: integer `{integer}` does not fit in 64 bits",
                    self.key_path(key)
                );
                self.report(span, message);
                None
            }
        }
    }

    /// An optional `true` or `false`.
    pub fn boolean(&mut self, key: &'static str) -> Option<Spanned<bool>> {
        let value = self.take(key)?;
        match value.get_ref() {
            &DeValue::Boolean(flag) => Some(Spanned::new(value.span(), flag)),
            _ => {
                self.wrong_type(key, "true or false", value);
                None
            }
        }
    }

    /// An optional array of strings. Elements of another type are reported
    /// and left out.
    pub fn strings(&mut self, key: &'static str) -> Option<Vec<Spanned<String>>> {
        let (array, _) = self.take_array(key)?;
        let strings = array
            .into_iter()
            .filter_map(|element| self.expect_string(key, element))
            .collect();
        Some(strings)
    }

    /// An optional table (`[key]`, `key = { … }` or dotted keys), read by
    /// `read` and then checked for unknown keys.
    pub fn table<T>(
        &mut self,
        key: &'static str,
        read: impl FnOnce(&mut TableReader<'i, '_>) -> T,
    ) -> Option<T> {
        let value = self.take(key)?;
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(entries) => {
                Some(self.read_table(key, TableKind::Table, entries, span, read))
            }
            other => {
                self.wrong_type(key, "a table", Spanned::new(span, other));
                None
            }
        }
    }

    /// An optional array of tables (`[[key]]`, or an array of inline
    /// tables), each read by `read` and checked for unknown keys. A table
    /// for which `read` returns `None` (it has reported why) is left out;
    /// when that leaves none of a non-empty array, the key reads as absent,
    /// so that no "at least one" complaint follows the real problem.
    pub fn tables<T>(
        &mut self,
        key: &'static str,
        mut read: impl FnMut(&mut TableReader<'i, '_>) -> Option<T>,
    ) -> Option<Spanned<Vec<Spanned<T>>>> {
        let (array, span) = self.take_array(key)?;
        let written = array.len();
        let mut tables = Vec::with_capacity(written);
        for element in array {
            let element_span = element.span();
            match element.into_inner() {
                DeValue::Table(entries) => {
                    let kind = TableKind::ArrayElement;
                    let table_span = element_span.clone();
                    if let Some(table) = self.read_table(key, kind, entries, table_span, &mut read)
                    {
                        tables.push(Spanned::new(element_span, table));
                    }
                }
                other => self.wrong_type(key, "a table", Spanned::new(element_span, other)),
            }
        }
        (written == 0 || !tables.is_empty()).then(|| Spanned::new(span, tables))
    }

    fn read_table<T>(
        &mut self,
        key: &'static str,
        kind: TableKind,
        entries: DeTable<'i>,
        span: Range<usize>,
        read: impl FnOnce(&mut TableReader<'i, '_>) -> T,
    ) -> T {
        let mut table = TableReader {
            entries,
            span,
            path: self.key_path(key),
            kind,
            asked: Vec::new(),
            problems: self.problems,
        };
        let value = read(&mut table);
        table.finish();
        value
    }

    /// Reports every key no getter asked for.
    fn finish(self) {
        let name = self.name();
        for (key, _) in self.entries.iter() {
            let message = if self.asked.is_empty() {
                format!("unknown key '{}' {name}", key.get_ref())
            } else {
                format!(
                    "unknown key '{}' {name} (expected one of: {})",
                    key.get_ref(),
                    self.asked.join(", ")
                )
            };
            self.problems.push(Problem {
                span: key.span(),
                message,
            });
        }
    }

    /// Takes `key` if it is an array (with the array's span); any other
    /// type is reported and reads as absent.
    fn take_array(&mut self, key: &'static str) -> Option<(DeArray<'i>, Range<usize>)> {
        let value = self.take(key)?;
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(array) => Some((array, span)),
            other => {
                self.wrong_type(key, "an array", Spanned::new(span, other));
                None
            }
        }
    }

    fn take(&mut self, key: &'static str) -> Option<Spanned<DeValue<'i>>> {
        debug_assert!(!self.asked.contains(&key), "{key} read twice");
        self.asked.push(key);
        self.entries.remove(key)
    }

    fn expect_string(
        &mut self,
        key: &'static str,
        value: Spanned<DeValue<'i>>,
    ) -> Option<Spanned<String>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::String(text) => Some(Spanned::new(span, text.into_owned())),
            other => {
                self.wrong_type(key, "a string", Spanned::new(span, other));
                None
            }
        }
    }

    fn wrong_type(&mut self, key: &str, expected: &str, found: Spanned<DeValue<'_>>) {
        let message = format!(
            "{}: expected {expected}, found {}",
            self.key_path(key),
            describe_value(found.get_ref())
        );
        self.report(found.span(), message);
    }

    fn report(&mut self, span: Range<usize>, message: String) {
        self.problems.push(Problem { span, message });
    }

    /// `key` as messages name it: `listener.port`, `log_level`.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The table as messages name it: `at top level`, `in [c2s]`, `in [[host]]`.
    fn name(&self) -> String {
        match self.kind {
            TableKind::TopLevel => "at top level".to_owned(),
            TableKind::Table => format!("in [{}]", self.path),
            TableKind::ArrayElement => format!("in [[{}]]", self.path),
        }
    }
}

fn integer_value(integer: &DeInteger<'_>) -> Option<i64> {
    i64::from_str_radix(integer.as_str(), integer.radix()).ok()
}

/// A value as a type error shows it, such as `string "5222"` or
/// `integer `5``.
fn describe_value(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(text) => format!("string {text:?}"),
        DeValue::Integer(integer) => match integer_value(integer) {
            Some(number) => format!("integer `{number}`"),
            None => format!("integer `{integer}`"),
        },
        DeValue::Float(float) => format!("floating point `{float}`"),
        DeValue::Boolean(flag) => format!("boolean `{flag}`"),
        DeValue::Datetime(datetime) => format!("datetime `{datetime}`"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `text` with `read`; problems as `line: message`.
    fn read<T>(text: &str, read: impl FnOnce(&mut TableReader<'_, '_>) -> T) -> (T, Vec<String>) {
        let document = DeTable::parse(text).expect("valid TOML");
        let (value, problems) = read_document(document, read);
        let problems = problems
            .into_iter()
            .map(|problem| {
                let before = text.get(..problem.span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                format!("{line}: {}", problem.message)
            })
            .collect();
        (value, problems)
    }

    #[test]
    fn scalars_with_their_spans() {
        let text = "name = \"x\"\ncount = 0x10\nnegative = -3\nflag = true\n";
        let ((name, count, negative, flag), problems) = read(text, |top| {
            (
                top.string("name"),
                top.integer("count"),
                top.integer("negative"),
                top.boolean("flag"),
            )
        });
        assert!(problems.is_empty(), "{problems:?}");
        let name = name.expect("name");
        assert_eq!(name.get_ref(), "x");
        assert_eq!(text.get(name.span()), Some("\"x\""));
        assert_eq!(count.map(Spanned::into_inner), Some(16));
        assert_eq!(negative.map(Spanned::into_inner), Some(-3));
        assert_eq!(flag.map(Spanned::into_inner), Some(true));
    }

    #[test]
    fn absent_keys_read_as_none_without_a_problem() {
        let ((text, number, flag, list), problems) = read("", |top| {
            (
                top.string("a"),
                top.integer("b"),
                top.boolean("c"),
                top.strings("d"),
            )
        });
        assert!(text.is_none() && number.is_none() && flag.is_none() && list.is_none());
        assert!(problems.is_empty());
        let (table, problems) = read("", |top| top.table("t", |_| ()));
        assert!(table.is_none() && problems.is_empty());
    }

    #[test]
    fn wrong_types_name_the_key_path_and_what_was_found() {
        let text = "a = 1\nb = \"two\"\nc = 1.5\nd = false\ne = 1979-05-27\nf = [1]\ng = { x = 1 }\n[t]\nh = 1e3\n";
        let (_, problems) = read(text, |top| {
            top.string("a");
            top.integer("b");
            top.integer("c");
            top.string("d");
            top.boolean("e");
            top.string("f");
            top.integer("g");
            top.table("t", |t| t.boolean("h"));
        });
        assert_eq!(
            problems,
            vec![
                "1: a: expected a string, found integer `1`",
                "2: b: expected an integer, found string \"two\"",
                "3: c: expected an integer, found floating point `1.5`",
                "4: d: expected a string, found boolean `false`",
                "5: e: expected true or false, found datetime `1979-05-27`",
                "6: f: expected a string, found an array",
                "7: g: expected an integer, found a table",
                "9: t.h: expected true or false, found floating point `1e3`",
            ]
        );
    }

    #[test]
    fn integers_beyond_64_bits_are_reported() {
        let (value, problems) = read("big = 0xffffffffffffffff\n", |top| top.integer("big"));
        assert!(value.is_none());
        assert_eq!(
            problems,
            vec!["1: big: integer `0xffffffffffffffff` does not fit in 64 bits"]
        );
    }

    #[test]
    fn string_arrays_leave_out_and_report_other_elements() {
        let (list, problems) = read("list = [\"a\", 2, \"c\"]\nnot_list = \"x\"\n", |top| {
            (top.strings("list"), top.strings("not_list"))
        });
        let strings: Vec<String> = list
            .0
            .expect("array")
            .into_iter()
            .map(Spanned::into_inner)
            .collect();
        assert_eq!(strings, vec!["a", "c"]);
        assert!(list.1.is_none());
        assert_eq!(
            problems,
            vec![
                "1: list: expected a string, found integer `2`",
                "2: not_list: expected an array, found string \"x\"",
            ]
        );
    }

    #[test]
    fn unknown_keys_list_the_keys_asked_for_in_order() {
        let text = "zeta = 1\nalpha = 2\n[t]\nb = 1\nextra = true\n[[list]]\nq = 1\n";
        let (_, problems) = read(text, |top| {
            top.integer("alpha");
            top.table("t", |t| {
                t.integer("b");
                t.integer("a");
            });
            top.tables("list", |_| Some(()));
        });
        assert_eq!(
            problems,
            vec![
                "5: unknown key 'extra' in [t] (expected one of: b, a)",
                "7: unknown key 'q' in [[list]]",
                "1: unknown key 'zeta' at top level (expected one of: alpha, t, list)",
            ]
        );
    }

    #[test]
    fn dotted_keys_and_sub_tables_belong_to_their_table() {
        let (_, problems) = read("t.x = 1\n[u.v]\n", |top| {
            top.table("t", |_| ());
            top.table("u", |_| ());
        });
        assert_eq!(
            problems,
            vec!["1: unknown key 'x' in [t]", "2: unknown key 'v' in [u]",]
        );
    }

    #[test]
    fn missing_required_keys_drop_only_their_table() {
        let text = "[[item]]\nname = \"a\"\n[[item]]\nsize = 1\n[[item]]\nname = 3\n";
        let (items, problems) = read(text, |top| {
            top.tables("item", |item| {
                let name = item.required_string("name");
                item.integer("size");
                name
            })
        });
        let items = items.expect("one item is whole");
        assert_eq!(text.get(items.span()), Some("[[item]]"));
        let names: Vec<String> = items
            .into_inner()
            .into_iter()
            .map(|item| item.into_inner().into_inner())
            .collect();
        assert_eq!(names, vec!["a"]);
        assert_eq!(
            problems,
            vec![
                "3: missing required key 'name' in [[item]]",
                "6: item.name: expected a string, found integer `3`",
            ]
        );
    }

    #[test]
    fn arrays_of_tables() {
        // An empty array is present (and empty); one whose every table was
        // dropped reads as absent.
        let (empty, problems) = read("item = []\n", |top| top.tables("item", |_| Some(())));
        assert_eq!(empty.map(|list| list.into_inner().len()), Some(0));
        assert!(problems.is_empty());
        let (dropped, _) = read("[[item]]\n", |top| {
            top.tables("item", |item| item.required_string("name"))
        });
        assert!(dropped.is_none());

        // Inline tables count as tables; other elements are reported.
        let text = "item = [{ name = \"a\" }, 5]\nother = { name = \"b\" }\n";
        let ((items, other), problems) = read(text, |top| {
            (
                top.tables("item", |item| item.required_string("name")),
                top.tables("other", |item| item.required_string("name")),
            )
        });
        assert_eq!(items.map(|list| list.into_inner().len()), Some(1));
        assert!(other.is_none());
        assert_eq!(
            problems,
            vec![
                "1: item: expected a table, found integer `5`",
                "2: other: expected an array, found a table",
            ]
        );
    }

    #[test]
    fn a_table_of_the_wrong_type_is_reported() {
        let (table, problems) = read("t = 5\n", |top| top.table("t", |_| ()));
        assert!(table.is_none());
        assert_eq!(problems, vec!["1: t: expected a table, found integer `5`"]);
    }
}
