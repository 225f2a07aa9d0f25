//! One allowed value of a model's `options` param, typed by its param.
//!
//! Why not one Rust enum per param: a generated crate holds hundreds of models, and each
//! enum's derived impls (six of them) cost more compile time than the rest of its model. A
//! `Choice<P>` is one type whose impls are written once here; a generated param only names a
//! marker type `P` and lists its values as constants of it, so a typo'd value is still a
//! compile error (`no associated item named …`, with the closest name suggested) and a value
//! of another param or another model does not type-check.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use super::{ParamField, ParamValue, ToParam};

/// One allowed value of an `options` param of a generated model; `P` is the param's marker
/// type, whose constants are the allowed values.
///
/// What generated code holds for a param `aspect_ratio` with two options, and how it is used:
///
/// ```
/// use flora_api::Choice;
///
/// /// The values of `aspect_ratio`.
/// pub enum AspectRatio {}
/// #[allow(non_upper_case_globals)]
/// impl AspectRatio {
///     /// Square (`square_1_1`)
///     pub const Square11: Choice<Self> = Choice::__generated("square_1_1");
///     /// Landscape 16:9 (`landscape_16_9`)
///     pub const Landscape169: Choice<Self> = Choice::__generated("landscape_16_9");
/// }
///
/// let ratio: Choice<AspectRatio> = AspectRatio::Square11;
/// assert_eq!(ratio.as_str(), "square_1_1");
/// assert_ne!(ratio, AspectRatio::Landscape169);
/// ```
pub struct Choice<P> {
    wire: &'static str,
    param: PhantomData<fn() -> P>,
}

impl<P> Choice<P> {
    /// The value as generated code lists it from the catalog. Not for hand-written code:
    /// use the constants of the param's marker type. (A value made up here is still refused
    /// before any request, by the model's check.)
    #[doc(hidden)]
    pub const fn __generated(wire: &'static str) -> Self {
        Choice {
            wire,
            param: PhantomData,
        }
    }

    /// The value as FLORA takes it (`square_1_1`).
    pub const fn as_str(&self) -> &'static str {
        self.wire
    }
}

impl<P> Clone for Choice<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for Choice<P> {}
impl<P> PartialEq for Choice<P> {
    fn eq(&self, other: &Self) -> bool {
        self.wire == other.wire
    }
}
impl<P> Eq for Choice<P> {}
impl<P> Hash for Choice<P> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.wire.hash(state);
    }
}
impl<P> fmt::Debug for Choice<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Choice({:?})", self.wire)
    }
}
impl<P> fmt::Display for Choice<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire)
    }
}
impl<P> ToParam for Choice<P> {
    fn to_param(&self) -> ParamValue {
        ParamValue::String(self.wire.to_owned())
    }
}
impl<P> ParamField for Choice<P> {
    fn param_value(&self) -> Option<ParamValue> {
        Some(self.to_param())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Ratio {}
    enum Other {}

    #[test]
    fn a_choice_is_sent_as_its_wire_value_and_compares_by_it() {
        let a = Choice::<Ratio>::__generated("square_1_1");
        assert_eq!(a.to_param(), ParamValue::String("square_1_1".into()));
        assert_eq!(a, Choice::<Ratio>::__generated("square_1_1"));
        assert_ne!(a, Choice::<Ratio>::__generated("landscape_16_9"));
        assert_eq!(format!("{a:?} {a}"), "Choice(\"square_1_1\") square_1_1");
        // Same wire value, another param: a different type (checked by the compiler; this
        // only shows both exist side by side).
        let _b: Choice<Other> = Choice::__generated("square_1_1");
    }
}
