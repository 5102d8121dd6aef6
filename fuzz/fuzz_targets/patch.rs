//! Patch application: arbitrary bytes as the body of `PATCH /api/v1/persons/{id}`, applied with
//! `patch::apply_patch` to a fixed valid person (every kind of field set, two tenures).
//!
//! Never panics; a body error names its field by a JSON pointer that resolves in the body; a refusal names at
//! least one field; a patched person validates again to the same fields (fixed point); the change reason is
//! trimmed, non-blank and within the free-text limit; an empty patch changes nothing; no error repeats a
//! submitted value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use person_core::patch::{PatchError, apply_patch, draft_of};
use person_core::validate::{self, MAX_FREE_TEXT};
use person_fuzz::{
    assert_body_error_names_a_field, assert_fixed_point, assert_no_value_echoed, assert_well_formed, current_person,
    messages, today,
};

fuzz_target!(|body: &[u8]| {
    let current = current_person();
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match apply_patch(current, body, today()) {
        Ok(outcome) => {
            assert_fixed_point(&outcome.fields);
            if let Some(reason) = &outcome.change_reason {
                assert!(!reason.is_empty() && reason.trim() == reason, "change reason not trimmed or blank");
                assert!(reason.chars().count() <= MAX_FREE_TEXT, "change reason over the limit");
            }
            // A patch that sets nothing (only a reason, or `{}`) leaves the person as it was.
            if json.as_ref().and_then(|j| j.as_object()).is_some_and(|m| m.keys().all(|k| k == "reason")) {
                let unchanged = validate::validate(&draft_of(current), today()).expect("the current person is valid");
                assert!(outcome.fields == unchanged, "an empty patch changed the person");
            }
        }
        Err(PatchError::Body(error)) => {
            assert_body_error_names_a_field(&error, json.as_ref());
            if let Some(json) = &json {
                assert_no_value_echoed(json, &error.to_string());
            }
        }
        Err(PatchError::Invalid(errors)) => {
            assert_well_formed(&errors);
            if let Some(json) = &json {
                assert_no_value_echoed(json, &messages(&errors));
            }
        }
    }
});
