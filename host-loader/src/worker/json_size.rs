//! A plugin's JSON output is parsed into a `serde_json::Value` tree in the host, where each
//! value costs tens of bytes and each object far more (a map of its own): a 16 MiB array of
//! zeros (8 million values) would take over half a gigabyte of the host's memory, and half a
//! million one-key objects over a gigabyte, outside the plugin's own limit. [`check`] weighs
//! the values first, without building anything (a scalar 1, an array [`ARRAY_WEIGHT`], an
//! object [`OBJECT_WEIGHT`]), and refuses an output heavier than [`MAX_VALUES`].

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// Largest weight of one output: a million scalars, or a sixteenth as many objects.
pub const MAX_VALUES: usize = 1_000_000;
/// What an array weighs (its vector and value) before its elements.
const ARRAY_WEIGHT: usize = 2;
/// What an object weighs (its map, node and value) before its entries.
const OBJECT_WEIGHT: usize = 16;

/// Checks that `payload` weighs at most `max`; an error says which bound it broke (or what is
/// wrong with the JSON). A payload too short to weigh more (the heaviest shape, `{}`, weighs
/// [`OBJECT_WEIGHT`] in two bytes) is not read.
pub fn check(payload: &[u8], max: usize) -> Result<(), String> {
    if payload.len().saturating_mul(OBJECT_WEIGHT / 2) < max {
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
        self.weigh(1)
    }

    fn weigh<E: de::Error>(self, weight: usize) -> Result<(), E> {
        match self.left.get().checked_sub(weight) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(format_args!(
                "heavier than {} JSON values (an object counts {OBJECT_WEIGHT}, an array \
                 {ARRAY_WEIGHT}); return a smaller result",
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
        self.weigh(ARRAY_WEIGHT)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.weigh(OBJECT_WEIGHT)?;
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
    fn values_are_weighed_to_the_bound_and_no_further() {
        // Two objects (16 each), an array (2), four scalars.
        let value = br#"{"a": [1, 2, {"b": null}], "c": "x"}"#;
        assert_eq!(check(value, 38), Ok(()));
        let error = check(value, 37).unwrap_err();
        assert!(error.starts_with("heavier than 37 JSON values"), "{error}");
        assert!(
            check(b"[1, 2", 2).is_err(),
            "malformed JSON is still an error"
        );
        assert!(
            check(b"[1] [2]", 2).is_err(),
            "trailing values are an error"
        );
        // The bound in force: a long array of zeros or of empty objects is refused, a long
        // string is one value.
        let zeros = format!("[{}0]", "0,".repeat(MAX_VALUES));
        assert!(check(zeros.as_bytes(), MAX_VALUES).is_err());
        let objects = format!("[{}{{}}]", "{},".repeat(MAX_VALUES / OBJECT_WEIGHT));
        assert!(check(objects.as_bytes(), MAX_VALUES).is_err());
        let text = format!("\"{}\"", "x".repeat(3 * MAX_VALUES));
        assert_eq!(check(text.as_bytes(), MAX_VALUES), Ok(()));
    }
}
