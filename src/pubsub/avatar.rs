//! User avatars in both their forms: the two PEP nodes of XEP-0084 (the
//! image in `urn:xmpp:avatar:data`, its description in
//! `urn:xmpp:avatar:metadata`) and the `<PHOTO/>` of the vCard-temp
//! (XEP-0054) whose hash goes in presence (XEP-0153). The PEP service uses
//! these conversions to keep the two in step (XEP-0398).
//!
//! Pure conversions, without limits of their own: everything converted
//! here arrived in a stanza or a stored item, already bounded by the
//! caller's stanza, item and vCard limits. What [`with_photo`] returns is
//! not checked against the vCard limit; the caller does that as for any
//! vCard it stores.

use crate::im::vcard::NS_VCARD;
use crate::sasl::base64;
use crate::xml::{Element, Node};

/// The XEP-0084 data node, and the namespace of its `<data/>` payload.
pub const NS_AVATAR_DATA: &str = "urn:xmpp:avatar:data";
/// The XEP-0084 metadata node, and the namespace of its `<metadata/>`
/// payload.
pub const NS_AVATAR_METADATA: &str = "urn:xmpp:avatar:metadata";

/// An avatar image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Avatar {
    /// The image itself.
    pub bytes: Vec<u8>,
    /// Its media type, lower case (e.g. `image/png`).
    pub mime: String,
    /// The lower-case hex SHA-1 of `bytes`: the XEP-0084 item id and the
    /// XEP-0153 presence hash.
    pub id: String,
}

impl Avatar {
    /// The avatar of `bytes`, computing its id.
    pub fn new(bytes: Vec<u8>, mime: String) -> Avatar {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes);
        Avatar {
            id: crate::ids::hex(digest.as_ref()),
            bytes,
            mime,
        }
    }
}

/// What a published metadata payload announces about the avatar in the
/// data node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The hex SHA-1 of the image, lower case.
    pub id: String,
    /// The image's size as announced (not checked against the data).
    pub bytes: u64,
    /// Its media type, lower case.
    pub mime: String,
}

/// The photo of a `<vCard xmlns='vcard-temp'>`, from the first `<PHOTO/>`
/// as [`crate::im::vcard::photo_hash`] reads it, so that [`Avatar::id`]
/// equals the hash the server puts in presence. `None` without a photo,
/// with an `<EXTVAL/>` only, or with an empty or undecodable `<BINVAL/>`.
/// The media type is `<TYPE/>`'s; when that is missing or not a media type
/// it is guessed from the image's first bytes, and is `image/png` (the
/// type XEP-0084 requires everyone to support) if that fails too.
pub fn from_vcard(vcard: &Element) -> Option<Avatar> {
    if !vcard.is("vCard", NS_VCARD) {
        return None;
    }
    let photo = vcard.get_child("PHOTO", NS_VCARD)?;
    let bytes = decode_lenient(&photo.get_child("BINVAL", NS_VCARD)?.text()).ok()?;
    let mime = photo
        .get_child("TYPE", NS_VCARD)
        .and_then(|t| media_type(&t.text()))
        .or_else(|| sniff(&bytes).map(str::to_string))
        .unwrap_or_else(|| "image/png".to_string());
    Some(Avatar::new(bytes, mime))
}

/// `<data xmlns='urn:xmpp:avatar:data'>` holding the image in base64, on
/// one line (XEP-0084 §4.1: line feeds should not be added): the payload of
/// the data item with id [`Avatar::id`].
pub fn data_payload(a: &Avatar) -> Element {
    Element::new("data", NS_AVATAR_DATA).with_text(base64::encode(&a.bytes))
}

/// `<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes id type/>`: the
/// payload of the metadata item with id [`Avatar::id`]. `width` and
/// `height` are added when the PNG, GIF or JPEG header gives them.
pub fn metadata_payload(a: &Avatar) -> Element {
    let mut info = Element::new("info", NS_AVATAR_METADATA)
        .with_attr("bytes", a.bytes.len().to_string())
        .with_attr("id", a.id.as_str())
        .with_attr("type", a.mime.as_str());
    if let Some((width, height)) = dimensions(&a.bytes) {
        info.set_attr("width", width.to_string());
        info.set_attr("height", height.to_string());
    }
    Element::new("metadata", NS_AVATAR_METADATA).with_child(info)
}

/// What a published metadata payload announces: the first `<info/>`
/// without a `url` (XEP-0398 §3.1: that is the one whose image is in the
/// data node), or `None` for a `<metadata/>` without any `<info/>` or
/// `<pointer/>`: the avatar was disabled (XEP-0084 §4.6, including the
/// deprecated `<stop/>`). An error when the image is only elsewhere (at
/// URLs or behind a `<pointer/>`), or when the `<info/>` lacks a valid
/// `id`, `bytes` or `type`.
pub fn metadata_info(metadata: &Element) -> Result<Option<Info>, String> {
    if !metadata.is("metadata", NS_AVATAR_METADATA) {
        return Err("expected <metadata xmlns='urn:xmpp:avatar:metadata'/>".into());
    }
    let mut infos = metadata
        .children()
        .filter(|c| c.is("info", NS_AVATAR_METADATA))
        .peekable();
    if infos.peek().is_none() {
        if metadata.get_child("pointer", NS_AVATAR_METADATA).is_some() {
            return Err("the avatar is only available from a third party (<pointer/>)".into());
        }
        return Ok(None);
    }
    let info = infos
        .find(|i| i.attr("url").is_none())
        .ok_or("the avatar is only available at a URL")?;
    let id = info
        .attr("id")
        .filter(|id| id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("<info/> lacks a SHA-1 'id'")?
        .to_ascii_lowercase();
    let bytes = info
        .attr("bytes")
        .and_then(|b| b.trim().parse::<u64>().ok())
        .ok_or("<info/> lacks a valid 'bytes'")?;
    let mime = info
        .attr("type")
        .and_then(media_type)
        .ok_or("<info/> lacks a valid media 'type'")?;
    Ok(Some(Info { id, bytes, mime }))
}

/// The avatar in a published `<data xmlns='urn:xmpp:avatar:data'>`, with
/// the type `info` gives it. Refused unless the SHA-1 of the decoded image
/// is `info.id` (either case); `info.bytes` is not checked, since the hash
/// already proves the image is the one announced.
pub fn from_data(data: &Element, info: &Info) -> Result<Avatar, String> {
    if !data.is("data", NS_AVATAR_DATA) {
        return Err("expected <data xmlns='urn:xmpp:avatar:data'/>".into());
    }
    let bytes = decode_lenient(&data.text())?;
    let avatar = Avatar::new(bytes, info.mime.clone());
    if !avatar.id.eq_ignore_ascii_case(&info.id) {
        return Err(format!(
            "the avatar data hashes to {}, not to the announced {}",
            avatar.id, info.id
        ));
    }
    Ok(avatar)
}

/// The vCard with its photo replaced by `avatar` (`<PHOTO><TYPE/><BINVAL/>`,
/// the base64 on one line: XEP-0153 readers must ignore whitespace, so
/// wrapping would only add bytes) or removed when `avatar` is `None`. The
/// new photo takes the place of the first old one (or goes last); every
/// other `<PHOTO/>` is dropped, so no reader can pick a stale one; nothing
/// else changes. Without a `vcard`, one is created. A vCard left empty is
/// how clients clear theirs: the caller may store it as no vCard.
pub fn with_photo(vcard: Option<&Element>, avatar: Option<&Avatar>) -> Element {
    let mut out = match vcard {
        Some(v) => v.clone(),
        None => Element::new("vCard", NS_VCARD),
    };
    let mut new_photo = avatar.map(|a| {
        Node::Element(
            Element::new("PHOTO", NS_VCARD)
                .with_child(Element::new("TYPE", NS_VCARD).with_text(a.mime.as_str()))
                .with_child(Element::new("BINVAL", NS_VCARD).with_text(base64::encode(&a.bytes))),
        )
    });
    let old = std::mem::take(&mut out.children);
    out.children.reserve(old.len() + 1);
    let mut placed = false;
    for node in old {
        if matches!(&node, Node::Element(e) if e.is("PHOTO", NS_VCARD)) {
            if !placed {
                placed = true;
                out.children.extend(new_photo.take());
            }
            continue;
        }
        out.children.push(node);
    }
    out.children.extend(new_photo);
    out
}

/// Base64 with any whitespace in it ignored, as both XEP-0153 (vCard
/// BINVAL) and XEP-0084 (data) require; the crate's decoder is strict.
/// Empty data is no image.
fn decode_lenient(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err("the avatar data is empty".into());
    }
    base64::decode(&compact).map_err(|e| format!("the avatar data is not base64: {e}"))
}

/// `s` as a lower-case `type/subtype` (RFC 6838 §4.2 names), or `None`:
/// the value is copied into other payloads, so garbage stays out.
fn media_type(s: &str) -> Option<String> {
    let s = s.trim();
    let (top, sub) = s.split_once('/')?;
    let name_ok = |n: &str| {
        (1..=127).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (name_ok(top) && name_ok(sub)).then(|| s.to_ascii_lowercase())
}

/// The media type of an image from its signature, for vCards without
/// `<TYPE/>`.
fn sniff(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(PNG_SIGNATURE) {
        Some("image/png")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else {
        None
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Width and height from a PNG, GIF or JPEG header, `None` for anything
/// else or a zero size. The JPEG walk visits each marker segment once and
/// stops at the first frame header or at the image data, so this is cheap
/// even for a large image.
fn dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let (w, h) = if b.starts_with(PNG_SIGNATURE) {
        // The first chunk must be IHDR: width then height, big-endian.
        if b.get(12..16) != Some(b"IHDR") {
            return None;
        }
        (be32(b, 16)?, be32(b, 20)?)
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        // The logical screen descriptor: little-endian width then height.
        let le16 = |at: usize| Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]));
        (u32::from(le16(6)?), u32::from(le16(8)?))
    } else if b.starts_with(&[0xFF, 0xD8]) {
        jpeg_dimensions(b)?
    } else {
        return None;
    };
    (w > 0 && h > 0).then_some((w, h))
}

fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let mut pos = 2;
    loop {
        // Every segment starts with 0xFF, possibly repeated as fill.
        if *b.get(pos)? != 0xFF {
            return None;
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *b.get(pos)?;
        pos += 1;
        match marker {
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            // End of image, or start of scan: no frame header before it.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let len = usize::from(be16(b, pos)?);
        if len < 2 {
            return None;
        }
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share
        // the range: precision, then height, then width.
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let height = be16(b, pos + 3)?;
            let width = be16(b, pos + 5)?;
            return Some((u32::from(width), u32::from(height)));
        }
        pos += len;
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::im::vcard::photo_hash;

    fn el(s: &str) -> Element {
        match Element::parse(s) {
            Ok(e) => e,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    /// The start of a 64×48 PNG: signature and IHDR, enough for the header
    /// readers.
    fn png() -> Vec<u8> {
        let mut b = PNG_SIGNATURE.to_vec();
        b.extend_from_slice(&[0, 0, 0, 13]);
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&64u32.to_be_bytes());
        b.extend_from_slice(&48u32.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
        b
    }

    /// `text` cut into lines of `n` characters, as vCard writers wrap it.
    fn wrapped(text: &str, n: usize) -> String {
        let chars: Vec<char> = text.chars().collect();
        chars
            .chunks(n)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("\r\n  ")
    }

    fn vcard_with(photo: &str) -> Element {
        el(&format!(
            "<vCard xmlns='vcard-temp'><FN>Juliet</FN>{photo}<NICKNAME>jc</NICKNAME></vCard>"
        ))
    }

    fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn vcard_photo_id_is_the_presence_hash() {
        let b64 = base64::encode(&png());
        let vcard = vcard_with(&format!(
            "<PHOTO><TYPE> image/PNG </TYPE><BINVAL>\n{}\n</BINVAL></PHOTO>",
            wrapped(&b64, 8)
        ));
        let avatar = from_vcard(&vcard);
        assert_eq!(avatar.as_ref().map(|a| a.bytes.clone()), Some(png()));
        assert_eq!(avatar.as_ref().map(|a| a.mime.as_str()), Some("image/png"));
        assert_eq!(
            avatar.as_ref().map(|a| a.id.clone()),
            ok(photo_hash(&vcard))
        );
        // sha1("hello avatar"), as in the vCard module's own test.
        let hello =
            vcard_with("<PHOTO><TYPE>image/png</TYPE><BINVAL>aGVsbG8gYXZhdGFy</BINVAL></PHOTO>");
        assert_eq!(
            from_vcard(&hello).map(|a| a.id),
            Some("8e274696f2bd20516c2f743207065763a6dfe75e".to_string())
        );
    }

    #[test]
    fn vcards_without_a_usable_photo() {
        for photo in [
            "",
            "<PHOTO><EXTVAL>https://example.org/me.png</EXTVAL></PHOTO>",
            "<PHOTO><TYPE>image/png</TYPE><BINVAL/></PHOTO>",
            "<PHOTO><TYPE>image/png</TYPE><BINVAL> \n </BINVAL></PHOTO>",
            "<PHOTO><TYPE>image/png</TYPE><BINVAL>!!not base64</BINVAL></PHOTO>",
            "<PHOTO><TYPE>image/png</TYPE><BINVAL>Zh==</BINVAL></PHOTO>",
        ] {
            assert_eq!(from_vcard(&vcard_with(photo)), None, "{photo}");
        }
        assert_eq!(
            from_vcard(&el(
                "<vcard xmlns='vcard-temp'><PHOTO><BINVAL>Zg==</BINVAL></PHOTO></vcard>"
            )),
            None
        );
    }

    #[test]
    fn missing_or_bad_type_is_guessed() {
        let b64 = base64::encode(&png());
        for photo in [
            format!("<PHOTO><BINVAL>{b64}</BINVAL></PHOTO>"),
            format!("<PHOTO><TYPE>a png please</TYPE><BINVAL>{b64}</BINVAL></PHOTO>"),
        ] {
            assert_eq!(
                from_vcard(&vcard_with(&photo)).map(|a| a.mime),
                Some("image/png".to_string())
            );
        }
        let gif = base64::encode(b"GIF89a\x10\x00\x20\x00");
        assert_eq!(
            from_vcard(&vcard_with(&format!(
                "<PHOTO><BINVAL>{gif}</BINVAL></PHOTO>"
            )))
            .map(|a| a.mime),
            Some("image/gif".to_string())
        );
        // Unknown bytes: the type every XEP-0084 client supports.
        assert_eq!(
            from_vcard(&vcard_with("<PHOTO><BINVAL>Zm9v</BINVAL></PHOTO>")).map(|a| a.mime),
            Some("image/png".to_string())
        );
    }

    #[test]
    fn metadata_and_data_round_trip() {
        let avatar = Avatar::new(png(), "image/png".into());
        let metadata = metadata_payload(&avatar);
        assert_eq!(
            metadata.to_string(),
            format!(
                "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='{}' id='{}' \
                 type='image/png' width='64' height='48'/></metadata>",
                png().len(),
                avatar.id
            )
        );
        let info = ok(metadata_info(&metadata));
        assert_eq!(
            info,
            Some(Info {
                id: avatar.id.clone(),
                bytes: png().len() as u64,
                mime: "image/png".into(),
            })
        );
        let data = data_payload(&avatar);
        assert!(!data.text().contains('\n'));
        let info = info.unwrap_or_else(|| panic!("info"));
        assert_eq!(from_data(&data, &info), Ok(avatar.clone()));
        // Line feeds must be accepted (XEP-0084 §4.1), and so must an
        // upper-case id.
        let spaced = Element::new("data", NS_AVATAR_DATA)
            .with_text(format!("\n  {}\n", wrapped(&base64::encode(&png()), 10)));
        let upper = Info {
            id: avatar.id.to_ascii_uppercase(),
            ..info
        };
        assert_eq!(from_data(&spaced, &upper), Ok(avatar));
    }

    #[test]
    fn hash_mismatch_is_refused() {
        let avatar = Avatar::new(png(), "image/png".into());
        let other = Avatar::new(b"another image".to_vec(), "image/png".into());
        let info = Info {
            id: avatar.id.clone(),
            bytes: png().len() as u64,
            mime: "image/png".into(),
        };
        assert!(from_data(&data_payload(&other), &info).is_err());
        assert!(from_data(&Element::new("data", NS_AVATAR_DATA), &info).is_err());
        assert!(
            from_data(
                &Element::new("data", NS_AVATAR_DATA).with_text("not base64!"),
                &info
            )
            .is_err()
        );
        let wrong_ns = Element::new("data", NS_AVATAR_METADATA).with_text(base64::encode(&png()));
        assert!(from_data(&wrong_ns, &info).is_err());
    }

    #[test]
    fn empty_metadata_disables() {
        for m in [
            "<metadata xmlns='urn:xmpp:avatar:metadata'/>",
            "<metadata xmlns='urn:xmpp:avatar:metadata'>\n  </metadata>",
            "<metadata xmlns='urn:xmpp:avatar:metadata'><stop/></metadata>",
        ] {
            assert_eq!(metadata_info(&el(m)), Ok(None), "{m}");
        }
    }

    #[test]
    fn metadata_info_picks_the_data_node_image() {
        let id = "111f4b3c50d7b0df729d299bc6f8e9ef9066971f";
        let m = el(&format!(
            "<metadata xmlns='urn:xmpp:avatar:metadata'>\
               <info bytes='23456' id='357a8123a30844a3aa99861b6349264ba67a5694' \
                     type='image/gif' url='http://avatars.example.org/happy.gif'/>\
               <info bytes='12345' height='64' id='{}' type='image/png' width='64'/>\
             </metadata>",
            id.to_ascii_uppercase()
        ));
        assert_eq!(
            metadata_info(&m),
            Ok(Some(Info {
                id: id.into(),
                bytes: 12345,
                mime: "image/png".into(),
            }))
        );
        for bad in [
            // Only at a URL, or only behind a pointer: nothing to convert.
            format!("<info bytes='1' id='{id}' type='image/png' url='https://x.example/a.png'/>"),
            "<pointer><x xmlns='urn:game'/></pointer>".to_string(),
            // Invalid or missing attributes.
            format!("<info id='{id}' type='image/png'/>"),
            format!("<info bytes='-1' id='{id}' type='image/png'/>"),
            format!("<info bytes='1' id='{id}'/>"),
            format!("<info bytes='1' id='{id}' type='png'/>"),
            "<info bytes='1' type='image/png'/>".to_string(),
            "<info bytes='1' id='abc' type='image/png'/>".to_string(),
            "<info bytes='1' id='zz1f4b3c50d7b0df729d299bc6f8e9ef9066971f' type='image/png'/>"
                .to_string(),
        ] {
            let m = el(&format!(
                "<metadata xmlns='urn:xmpp:avatar:metadata'>{bad}</metadata>"
            ));
            assert!(metadata_info(&m).is_err(), "{bad}");
        }
        assert!(metadata_info(&el("<metadata xmlns='urn:xmpp:avatar:data'/>")).is_err());
    }

    #[test]
    fn with_photo_replaces_and_removes() {
        let old = vcard_with(
            "<PHOTO><TYPE>image/gif</TYPE><BINVAL>R0lGODlh</BINVAL></PHOTO>\
             <PHOTO><EXTVAL>https://example.org/stale.png</EXTVAL></PHOTO>",
        );
        let avatar = Avatar::new(png(), "image/png".into());
        let replaced = with_photo(Some(&old), Some(&avatar));
        assert_eq!(
            replaced.to_string(),
            format!(
                "<vCard xmlns='vcard-temp'><FN>Juliet</FN><PHOTO><TYPE>image/png</TYPE>\
                 <BINVAL>{}</BINVAL></PHOTO><NICKNAME>jc</NICKNAME></vCard>",
                base64::encode(&png())
            )
        );
        assert_eq!(from_vcard(&replaced), Some(avatar.clone()));
        assert_eq!(ok(photo_hash(&replaced)), Some(avatar.id.clone()));
        let removed = with_photo(Some(&replaced), None);
        assert_eq!(removed, vcard_with(""));
        assert_eq!(ok(photo_hash(&removed)), None);
        // A vCard without a photo gets one at the end.
        let added = with_photo(Some(&removed), Some(&avatar));
        assert_eq!(
            added
                .children()
                .map(|c| c.name.as_ref())
                .collect::<Vec<_>>(),
            ["FN", "NICKNAME", "PHOTO"]
        );
        // No vCard yet.
        let fresh = with_photo(None, Some(&avatar));
        assert!(fresh.is("vCard", NS_VCARD));
        assert_eq!(from_vcard(&fresh), Some(avatar));
        assert_eq!(with_photo(None, None), Element::new("vCard", NS_VCARD));
    }

    #[test]
    fn image_dimensions() {
        assert_eq!(dimensions(&png()), Some((64, 48)));
        assert_eq!(dimensions(b"GIF87a\x20\x00\x10\x00rest"), Some((32, 16)));
        // SOI, an APP0 segment, fill bytes, then a baseline frame header:
        // 8-bit precision, height 32, width 96.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x06, b'J', b'F', b'I', b'F', 0xFF, 0xFF, 0xC0, 0x00,
            0x11, 0x08, 0x00, 0x20, 0x00, 0x60, 0x03,
        ];
        assert_eq!(dimensions(&jpeg), Some((96, 32)));
        // A progressive frame, after a Huffman table (C4 is not a frame).
        let progressive = [
            0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC2, 0x00, 0x11, 0x08, 0x01,
            0x00, 0x02, 0x00,
        ];
        assert_eq!(dimensions(&progressive), Some((512, 256)));
        for bad in [
            &b""[..],
            b"plain",
            &png()[..20],
            b"GIF89a\x00\x00\x10\x00",
            &[0xFF, 0xD8],
            &[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02],
            &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01],
            &[0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF],
            &[0xFF, 0xD8, 0x00],
        ] {
            assert_eq!(dimensions(bad), None, "{bad:?}");
        }
        let avatar = Avatar::new(b"no header".to_vec(), "image/png".into());
        assert_eq!(
            metadata_payload(&avatar)
                .get_child("info", NS_AVATAR_METADATA)
                .map(|i| (i.attr("width").is_some(), i.attr("height").is_some())),
            Some((false, false))
        );
    }
}
