//! XEP-0004 data forms: building the forms the server sends and reading
//! the ones clients submit.

use std::fmt;

use crate::xml::Element;

pub const NS_DATA: &str = "jabber:x:data";

/// XEP-0004 §3.3 field types the server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Hidden,
    TextSingle,
    TextPrivate,
    ListMulti,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Hidden => "hidden",
            FieldType::TextSingle => "text-single",
            FieldType::TextPrivate => "text-private",
            FieldType::ListMulti => "list-multi",
        }
    }
}

/// A form under construction: `<x xmlns='jabber:x:data' type='…'>`.
pub struct FormBuilder {
    x: Element,
}

impl FormBuilder {
    /// A form of `kind` (`form`, `result`, …) whose hidden FORM_TYPE field
    /// (XEP-0068) is `form_type`.
    pub fn new(kind: &str, form_type: &str) -> FormBuilder {
        let x = Element::new("x", NS_DATA).with_attr("type", kind);
        FormBuilder { x }.field("FORM_TYPE", FieldType::Hidden, None, &[form_type], false)
    }

    pub fn title(mut self, title: &str) -> Self {
        self.x
            .push_child(Element::new("title", NS_DATA).with_text(title));
        self
    }

    pub fn instructions(mut self, text: &str) -> Self {
        self.x
            .push_child(Element::new("instructions", NS_DATA).with_text(text));
        self
    }

    pub fn field(
        mut self,
        var: &str,
        kind: FieldType,
        label: Option<&str>,
        values: &[&str],
        required: bool,
    ) -> Self {
        let mut field = Element::new("field", NS_DATA)
            .with_attr("type", kind.as_str())
            .with_attr("var", var);
        if let Some(label) = label {
            field.set_attr("label", label);
        }
        if required {
            field.push_child(Element::new("required", NS_DATA));
        }
        for value in values {
            field.push_child(Element::new("value", NS_DATA).with_text(*value));
        }
        self.x.push_child(field);
        self
    }

    pub fn build(self) -> Element {
        self.x
    }
}

/// Why a submitted form was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    NotAForm,
    /// `type` is not `submit`.
    NotSubmitted,
    FieldWithoutVar,
    /// The same field appears twice.
    DuplicateField(String),
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::NotAForm => f.write_str("not a jabber:x:data form"),
            FormError::NotSubmitted => f.write_str("the form is not of type 'submit'"),
            FormError::FieldWithoutVar => f.write_str("a form field has no 'var'"),
            FormError::DuplicateField(var) => write!(f, "the form field '{var}' appears twice"),
        }
    }
}

impl std::error::Error for FormError {}

/// The values of a submitted form (`<x type='submit'>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Submission {
    fields: Vec<(String, Vec<String>)>,
}

impl Submission {
    pub fn parse(x: &Element) -> Result<Submission, FormError> {
        if !x.is("x", NS_DATA) {
            return Err(FormError::NotAForm);
        }
        if x.attr("type") != Some("submit") {
            return Err(FormError::NotSubmitted);
        }
        let mut fields: Vec<(String, Vec<String>)> = Vec::new();
        for field in x.children().filter(|c| c.is("field", NS_DATA)) {
            let var = field.attr("var").ok_or(FormError::FieldWithoutVar)?;
            if fields.iter().any(|(v, _)| v == var) {
                return Err(FormError::DuplicateField(var.to_string()));
            }
            let values = field
                .children()
                .filter(|c| c.is("value", NS_DATA))
                .map(Element::text)
                .collect();
            fields.push((var.to_string(), values));
        }
        Ok(Submission { fields })
    }

    /// The FORM_TYPE the submitter claims.
    pub fn form_type(&self) -> Option<&str> {
        self.value("FORM_TYPE")
    }

    /// The first value of field `var`, if the field is there with a value.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.values(var).first().map(String::as_str)
    }

    pub fn values(&self, var: &str) -> &[String] {
        self.fields
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, values)| values.as_slice())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_form_with_form_type_first() {
        let form = FormBuilder::new("result", "urn:example")
            .field("a", FieldType::ListMulti, None, &["x", "y"], false)
            .field("b", FieldType::TextPrivate, Some("B"), &[], true)
            .build();
        assert_eq!(
            form.to_string(),
            "<x xmlns='jabber:x:data' type='result'>\
             <field type='hidden' var='FORM_TYPE'><value>urn:example</value></field>\
             <field type='list-multi' var='a'><value>x</value><value>y</value></field>\
             <field type='text-private' var='b' label='B'><required/></field></x>"
        );
    }

    #[test]
    fn reads_a_submission() {
        let x = Element::parse(
            "<x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field>\
             <field var='username'><value>bill</value></field>\
             <field var='empty'/></x>",
        )
        .expect("parse");
        let s = Submission::parse(&x).expect("valid");
        assert_eq!(s.form_type(), Some("jabber:iq:register"));
        assert_eq!(s.value("username"), Some("bill"));
        assert_eq!(s.value("empty"), None);
        assert_eq!(s.value("missing"), None);

        let twice = Element::parse(
            "<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>",
        )
        .expect("parse");
        assert_eq!(
            Submission::parse(&twice),
            Err(FormError::DuplicateField("a".into()))
        );
        let form = Element::parse("<x xmlns='jabber:x:data' type='form'/>").expect("parse");
        assert_eq!(Submission::parse(&form), Err(FormError::NotSubmitted));
        let novar =
            Element::parse("<x xmlns='jabber:x:data' type='submit'><field/></x>").expect("parse");
        assert_eq!(Submission::parse(&novar), Err(FormError::FieldWithoutVar));
    }
}
