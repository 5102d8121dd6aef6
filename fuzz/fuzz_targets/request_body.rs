//! Request body parsing: arbitrary bytes as the body of `POST /api/v1/persons`, read with
//! `validate::parse_draft` (JSON object, read-only and unknown keys, types) and, when that succeeds, validated.
//!
//! Never panics; a body error names its field by a JSON pointer that resolves in the body; a refusal names at
//! least one field; accepted fields are a fixed point of store → read back → validate; the draft re-serialises
//! and re-parses to itself; no error repeats a submitted value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use person_core::validate;
use person_fuzz::{
    assert_body_error_names_a_field, assert_fixed_point, assert_no_value_echoed, assert_well_formed, messages, today,
};

fuzz_target!(|body: &[u8]| {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let draft = match validate::parse_draft(body) {
        Ok(draft) => draft,
        Err(error) => {
            assert_body_error_names_a_field(&error, json.as_ref());
            if let Some(json) = &json {
                assert_no_value_echoed(json, &error.to_string());
            }
            return;
        }
    };
    // The draft is what the server keeps of the body: it serialises and reads back to itself.
    let reserialised = serde_json::to_vec(&draft).expect("a draft serialises");
    let reparsed = validate::parse_draft(&reserialised).expect("a serialised draft parses");
    assert!(reparsed == draft, "a draft changed through serialisation");

    match validate::validate(&draft, today()) {
        Ok(fields) => assert_fixed_point(&fields),
        Err(errors) => {
            assert_well_formed(&errors);
            if let Some(json) = &json {
                assert_no_value_echoed(json, &messages(&errors));
            }
        }
    }
});
