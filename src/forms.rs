//! XEP-0004 data forms: parsing what a client submits and building the
//! forms and results the server sends. Generic: MUC configuration,
//! registration, voice requests, room info and ad-hoc commands all use it.

use std::fmt;

use crate::xml::Element;

pub const NS_DATA: &str = "jabber:x:data";

/// Limits on a submitted form, so a client cannot make the server hold an
/// arbitrarily large parsed copy of one stanza (the stanza size limit
/// bounds bytes, these bound the number of allocations).
pub const MAX_FIELDS: usize = 256;
pub const MAX_VALUES_PER_FIELD: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormType {
    Form,
    Submit,
    Cancel,
    Result,
}

impl FormType {
    pub fn as_str(self) -> &'static str {
        match self {
            FormType::Form => "form",
            FormType::Submit => "submit",
            FormType::Cancel => "cancel",
            FormType::Result => "result",
        }
    }

    fn parse(s: &str) -> Option<FormType> {
        match s {
            "form" => Some(FormType::Form),
            "submit" => Some(FormType::Submit),
            "cancel" => Some(FormType::Cancel),
            "result" => Some(FormType::Result),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Boolean,
    Fixed,
    Hidden,
    JidMulti,
    JidSingle,
    ListMulti,
    ListSingle,
    TextMulti,
    TextPrivate,
    TextSingle,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Fixed => "fixed",
            FieldType::Hidden => "hidden",
            FieldType::JidMulti => "jid-multi",
            FieldType::JidSingle => "jid-single",
            FieldType::ListMulti => "list-multi",
            FieldType::ListSingle => "list-single",
            FieldType::TextMulti => "text-multi",
            FieldType::TextPrivate => "text-private",
            FieldType::TextSingle => "text-single",
        }
    }

    fn parse(s: &str) -> Option<FieldType> {
        Some(match s {
            "boolean" => FieldType::Boolean,
            "fixed" => FieldType::Fixed,
            "hidden" => FieldType::Hidden,
            "jid-multi" => FieldType::JidMulti,
            "jid-single" => FieldType::JidSingle,
            "list-multi" => FieldType::ListMulti,
            "list-single" => FieldType::ListSingle,
            "text-multi" => FieldType::TextMulti,
            "text-private" => FieldType::TextPrivate,
            "text-single" => FieldType::TextSingle,
            _ => return None,
        })
    }
}

/// One `<field/>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Field {
    pub var: Option<String>,
    pub kind: Option<FieldType>,
    pub label: Option<String>,
    pub desc: Option<String>,
    pub required: bool,
    pub values: Vec<String>,
    /// (label, value) of each `<option/>`.
    pub options: Vec<(Option<String>, String)>,
}

impl Field {
    pub fn new(var: &str, kind: FieldType) -> Field {
        Field {
            var: Some(var.to_string()),
            kind: Some(kind),
            ..Field::default()
        }
    }

    /// A `fixed` field: text shown to the user, without a `var`.
    pub fn fixed(text: &str) -> Field {
        Field {
            kind: Some(FieldType::Fixed),
            values: vec![text.to_string()],
            ..Field::default()
        }
    }

    /// The hidden `FORM_TYPE` field naming the form's namespace.
    pub fn form_type(namespace: &str) -> Field {
        Field::new("FORM_TYPE", FieldType::Hidden).with_value(namespace)
    }

    pub fn with_label(mut self, label: &str) -> Field {
        self.label = Some(label.to_string());
        self
    }

    pub fn with_value(mut self, value: impl Into<String>) -> Field {
        self.values.push(value.into());
        self
    }

    pub fn with_values<I, S>(mut self, values: I) -> Field
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.values.extend(values.into_iter().map(Into::into));
        self
    }

    pub fn with_bool(self, value: bool) -> Field {
        self.with_value(if value { "1" } else { "0" })
    }

    pub fn with_option(mut self, label: &str, value: &str) -> Field {
        self.options
            .push((Some(label.to_string()), value.to_string()));
        self
    }

    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    /// The first value, for single-valued fields.
    pub fn value(&self) -> Option<&str> {
        self.values.first().map(String::as_str)
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("field", NS_DATA);
        if let Some(var) = &self.var {
            el.set_attr("var", var.as_str());
        }
        if let Some(kind) = self.kind {
            el.set_attr("type", kind.as_str());
        }
        if let Some(label) = &self.label {
            el.set_attr("label", label.as_str());
        }
        if let Some(desc) = &self.desc {
            el.push_child(Element::new("desc", NS_DATA).with_text(desc.as_str()));
        }
        if self.required {
            el.push_child(Element::new("required", NS_DATA));
        }
        for value in &self.values {
            el.push_child(Element::new("value", NS_DATA).with_text(value.as_str()));
        }
        for (label, value) in &self.options {
            let mut option = Element::new("option", NS_DATA);
            if let Some(label) = label {
                option.set_attr("label", label.as_str());
            }
            option.push_child(Element::new("value", NS_DATA).with_text(value.as_str()));
            el.push_child(option);
        }
        el
    }
}

/// A whole `<x xmlns='jabber:x:data'/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    pub kind: FormType,
    pub title: Option<String>,
    pub instructions: Vec<String>,
    pub fields: Vec<Field>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    NotAForm,
    BadType(String),
    BadFieldType(String),
    TooManyFields,
    TooManyValues(String),
    /// XEP-0004 §3.2: a field's `var` is unique within a form.
    DuplicateVar(String),
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::NotAForm => f.write_str("not a jabber:x:data form"),
            FormError::BadType(t) => write!(f, "unknown form type {t:?}"),
            FormError::BadFieldType(t) => write!(f, "unknown field type {t:?}"),
            FormError::TooManyFields => write!(f, "more than {MAX_FIELDS} fields"),
            FormError::TooManyValues(var) => {
                write!(
                    f,
                    "field {var:?} has more than {MAX_VALUES_PER_FIELD} values"
                )
            }
            FormError::DuplicateVar(var) => write!(f, "field {var:?} appears twice"),
        }
    }
}

impl std::error::Error for FormError {}

impl Form {
    pub fn new(kind: FormType) -> Form {
        Form {
            kind,
            title: None,
            instructions: Vec::new(),
            fields: Vec::new(),
        }
    }

    pub fn with_title(mut self, title: &str) -> Form {
        self.title = Some(title.to_string());
        self
    }

    pub fn with_instructions(mut self, text: &str) -> Form {
        self.instructions.push(text.to_string());
        self
    }

    pub fn with_field(mut self, field: Field) -> Form {
        self.fields.push(field);
        self
    }

    pub fn push(&mut self, field: Field) {
        self.fields.push(field);
    }

    /// Parses an `<x xmlns='jabber:x:data'/>`. A missing `type` is read as
    /// `submit`: some clients (and ad-hoc command callers) leave it out when
    /// they send a filled-in form.
    pub fn parse(el: &Element) -> Result<Form, FormError> {
        if !el.is("x", NS_DATA) {
            return Err(FormError::NotAForm);
        }
        let kind = match el.attr("type") {
            None => FormType::Submit,
            Some(t) => FormType::parse(t).ok_or_else(|| FormError::BadType(t.to_string()))?,
        };
        let mut form = Form::new(kind);
        for child in el.children() {
            if child.ns != NS_DATA {
                continue;
            }
            match child.name.as_ref() {
                "title" => form.title = Some(child.text()),
                "instructions" => form.instructions.push(child.text()),
                "field" => {
                    if form.fields.len() >= MAX_FIELDS {
                        return Err(FormError::TooManyFields);
                    }
                    let field = parse_field(child)?;
                    if let Some(var) = &field.var
                        && form.fields.iter().any(|f| f.var.as_ref() == Some(var))
                    {
                        return Err(FormError::DuplicateVar(var.clone()));
                    }
                    form.fields.push(field);
                }
                _ => {}
            }
        }
        Ok(form)
    }

    /// Finds the first `<x xmlns='jabber:x:data'/>` child of `parent`.
    pub fn find_in(parent: &Element) -> Option<Result<Form, FormError>> {
        parent.get_child("x", NS_DATA).map(Form::parse)
    }

    pub fn field(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var.as_deref() == Some(var))
    }

    /// The first value of field `var`.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.field(var).and_then(Field::value)
    }

    /// The value of the hidden `FORM_TYPE` field, if any.
    pub fn form_type(&self) -> Option<&str> {
        self.value("FORM_TYPE")
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("x", NS_DATA).with_attr("type", self.kind.as_str());
        if let Some(title) = &self.title {
            el.push_child(Element::new("title", NS_DATA).with_text(title.as_str()));
        }
        for text in &self.instructions {
            el.push_child(Element::new("instructions", NS_DATA).with_text(text.as_str()));
        }
        for field in &self.fields {
            el.push_child(field.to_element());
        }
        el
    }
}

fn parse_field(el: &Element) -> Result<Field, FormError> {
    let kind = match el.attr("type") {
        None => None,
        Some(t) => Some(FieldType::parse(t).ok_or_else(|| FormError::BadFieldType(t.to_string()))?),
    };
    let mut field = Field {
        var: el.attr("var").map(str::to_string),
        kind,
        label: el.attr("label").map(str::to_string),
        ..Field::default()
    };
    for child in el.children() {
        if child.ns != NS_DATA {
            continue;
        }
        match child.name.as_ref() {
            "value" => {
                if field.values.len() >= MAX_VALUES_PER_FIELD {
                    return Err(FormError::TooManyValues(
                        field.var.clone().unwrap_or_default(),
                    ));
                }
                field.values.push(child.text());
            }
            "required" => field.required = true,
            "desc" => field.desc = Some(child.text()),
            "option" => {
                if let Some(value) = child.get_child("value", NS_DATA) {
                    if field.options.len() >= MAX_VALUES_PER_FIELD {
                        return Err(FormError::TooManyValues(
                            field.var.clone().unwrap_or_default(),
                        ));
                    }
                    field
                        .options
                        .push((child.attr("label").map(str::to_string), value.text()));
                }
            }
            _ => {}
        }
    }
    Ok(field)
}

/// XEP-0004 §3.3 boolean: "0"/"false" or "1"/"true".
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Form, FormError> {
        Form::parse(&Element::parse(xml).expect("xml"))
    }

    #[test]
    fn parses_a_submission() {
        let form = parse(
            "<x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE'><value>urn:x</value></field>\
             <field var='a' type='boolean'><value>1</value></field>\
             <field var='m'><value>one</value><value>two</value></field>\
             <field var='empty'/></x>",
        )
        .expect("form");
        assert_eq!(form.kind, FormType::Submit);
        assert_eq!(form.form_type(), Some("urn:x"));
        assert_eq!(form.value("a").and_then(parse_bool), Some(true));
        assert_eq!(
            form.field("m").map(|f| f.values.clone()),
            Some(vec!["one".to_string(), "two".to_string()])
        );
        assert_eq!(form.value("empty"), None);
        assert!(form.field("empty").is_some());
        assert!(form.field("missing").is_none());
    }

    #[test]
    fn type_defaults_to_submit_and_bad_input_is_refused() {
        assert_eq!(
            parse("<x xmlns='jabber:x:data'/>").map(|f| f.kind),
            Ok(FormType::Submit)
        );
        assert_eq!(
            parse("<x xmlns='jabber:x:data' type='bogus'/>"),
            Err(FormError::BadType("bogus".into()))
        );
        assert_eq!(parse("<x xmlns='urn:other'/>"), Err(FormError::NotAForm));
        assert_eq!(
            parse("<x xmlns='jabber:x:data'><field var='a' type='nope'/></x>"),
            Err(FormError::BadFieldType("nope".into()))
        );
        assert_eq!(
            parse("<x xmlns='jabber:x:data'><field var='a'/><field var='a'/></x>"),
            Err(FormError::DuplicateVar("a".into()))
        );
        let many = format!(
            "<x xmlns='jabber:x:data'>{}</x>",
            (0..=MAX_FIELDS)
                .map(|i| format!("<field var='f{i}'/>"))
                .collect::<String>()
        );
        assert_eq!(parse(&many), Err(FormError::TooManyFields));
    }

    #[test]
    fn builds_and_parses_back() {
        let form = Form::new(FormType::Form)
            .with_title("Title")
            .with_instructions("Fill it in")
            .with_field(Field::form_type("urn:x"))
            .with_field(
                Field::new("choice", FieldType::ListSingle)
                    .with_label("Pick")
                    .with_option("One", "1")
                    .with_option("Two", "2")
                    .with_value("2")
                    .required(),
            )
            .with_field(Field::new("flag", FieldType::Boolean).with_bool(false))
            .with_field(Field::fixed("Some text"));
        let el = form.to_element();
        assert_eq!(el.attr("type"), Some("form"));
        let back = Form::parse(&el).expect("parse back");
        assert_eq!(back, form);
        assert_eq!(back.value("flag").and_then(parse_bool), Some(false));
    }

    #[test]
    fn booleans() {
        for (s, v) in [
            ("1", Some(true)),
            ("true", Some(true)),
            ("0", Some(false)),
            ("false", Some(false)),
            (" 1 ", Some(true)),
            ("yes", None),
            ("", None),
        ] {
            assert_eq!(parse_bool(s), v, "{s:?}");
        }
    }
}
