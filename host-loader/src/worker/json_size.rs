//! A plugin's JSON output is parsed into a `serde_json::Value` tree in the host, where each
//! value costs tens of bytes: a 16 MiB array of zeros (8 million values) would take over half
//! a gigabyte of the host's memory, outside the plugin's own limit. [`check`] counts the values
//! first, without building anything, and refuses an output with more than [`MAX_VALUES`].

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// Most JSON values (scalars, arrays, objects, each counted once) in one output: a tree of
/// this many costs the host a few tens of megabytes at most.
pub const MAX_VALUES: usize = 1_000_000;

/// Checks that `payload` holds at most `max` JSON values; an error says which bound it broke
/// (or what is wrong with the JSON). A payload too short to hold more than `max` values (each
/// takes two bytes, `0,` or `[]`, but the last) is not read.
pub fn check(payload: &[u8], max: usize) -> Result<(), String> {
    if payload.len() / 2 < max {
        return Ok(());
    }
    let left = Cell::new(max);
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
    Counter { left: &left, max }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(|e| e.to_string())
}

/// Counts every value it visits against `left`.
#[derive(Clone, Copy)]
struct Counter<'a> {
    left: &'a Cell<usize>,
    max: usize,
}

impl Counter<'_> {
    fn tick<E: de::Error>(self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(format_args!(
                "more than {} JSON values; return a smaller result",
                self.max
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counter<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.tick()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.tick()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.tick()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.tick()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.tick()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.tick()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.tick()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_to_the_bound_and_no_further() {
        assert_eq!(check(br#"{"a": [1, 2, {"b": null}], "c": "x"}"#, 7), Ok(()));
        let error = check(br#"{"a": [1, 2, {"b": null}], "c": "x"}"#, 6).unwrap_err();
        assert!(error.starts_with("more than 6 JSON values"), "{error}");
        assert!(
            check(b"[1, 2", 2).is_err(),
            "malformed JSON is still an error"
        );
        assert!(
            check(b"[1] [2]", 2).is_err(),
            "trailing values are an error"
        );
        // The bound in force: a long array of zeros is refused, a long string is one value.
        let zeros = format!("[{}0]", "0,".repeat(MAX_VALUES));
        assert!(check(zeros.as_bytes(), MAX_VALUES).is_err());
        let text = format!("\"{}\"", "x".repeat(3 * MAX_VALUES));
        assert_eq!(check(text.as_bytes(), MAX_VALUES), Ok(()));
    }
}
