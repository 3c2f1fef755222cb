//! Slots: the typed values of the current row that expressions, the summary and the sinks read.
//!
//! Every schema column and derived field has a numbered slot (schema columns first, then derived
//! fields; see [`crate::plan`]). The row loop stores each field's typed value in its slot and
//! each derived field's result after it. A number is stored as it is; text is not copied: its
//! slot only says [`SlotValue::Text`], and whoever needs the bytes reads them from the record
//! (or the derived field's text buffer) through the slot's index.

/// The value in one slot of the current row.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) enum SlotValue {
    /// An empty optional field, or an expression over one.
    #[default]
    Null,
    Int(i64),
    Float(f64),
    /// Text, read through the row's text accessor for this slot.
    Text,
}

impl SlotValue {
    #[inline]
    pub fn as_f64(self) -> Option<f64> {
        match self {
            SlotValue::Null | SlotValue::Text => None,
            SlotValue::Int(i) => Some(i as f64),
            SlotValue::Float(f) => Some(f),
        }
    }
}

/// The type of a slot, fixed when the plan is compiled: a schema column's (booleans have no
/// slot type: expressions do not use them) or a derived expression's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotType {
    Int,
    Float,
    Text,
}

impl SlotType {
    pub fn is_numeric(self) -> bool {
        self != SlotType::Text
    }
}
