//! OpenAPI v3 structural-schema handling for custom resources, modelled on
//! kube-apiserver's apiextensions machinery:
//!
//! * [`prune_unknown`] mirrors `apiextensions-apiserver/pkg/apiserver/schema/pruning`
//!   (`PruneWithOptions(obj, schema, isResourceRoot=true, TrackUnknownFieldPaths)`) followed by
//!   `defaulting.PruneNonNullableNullsWithoutDefaults`, which is what the real server runs while
//!   decoding a custom resource.
//! * [`apply_defaults`] mirrors `apiextensions-apiserver/pkg/apiserver/schema/defaulting.Default`.
//! * [`validate`] mirrors `apiextensions-apiserver/pkg/apiserver/validation.ValidateCustomResource`,
//!   i.e. the kube-openapi `validate.SchemaValidator` plus `kubeOpenAPIResultToFieldErrors`, which
//!   turns each kube-openapi error into a `field.Error` (reason = `field.ErrorType`, message =
//!   `ErrorBody()`, field = the error's path).
//!
//! The intended call order (as in kube-apiserver) is: `prune_unknown`, `apply_defaults`,
//! `validate`.
//!
//! Wording notes (what the real server says, and where this module is unsure):
//! * Type mismatch: reason `FieldValueTypeInvalid`, message
//!   `Invalid value: "string": spec.replicas in body must be of type integer: "string"`.
//!   `x-kubernetes-int-or-string` reports the type as `integer,string`.
//! * Missing required field: reason `FieldValueRequired`, message `Required value`.
//! * Enum: reason `FieldValueNotSupported`,
//!   message `Unsupported value: "bogus": supported values: "a", "b"`.
//! * minimum/maximum/minLength/pattern/minItems/minProperties/uniqueItems/format: reason
//!   `FieldValueInvalid`, message `Invalid value: <value>: <kube-openapi message>`, e.g.
//!   `Invalid value: -1: spec.replicas in body should be greater than or equal to 0`.
//!   A failed `format` is reported like a type error (`FieldValueTypeInvalid`,
//!   `... in body must be of type date-time: "abc"`), as kube-openapi does.
//! * maxLength: reason `FieldValueTooLong`, message `Too long: may not be longer than 5`
//!   (k8s 1.25-1.31 wording; newer releases may say `may not be more than 5 bytes`; unsure).
//!   Length is counted in Unicode code points, as kube-openapi does.
//! * maxItems / maxProperties: reason `FieldValueTooMany`,
//!   message `Too many: 3: must have at most 2 items` (also used for properties, as the real
//!   server does). Whether the real server knows the limit depends on the kube-openapi version
//!   (older ones say `Too many: 3: has too many items`); this module always includes it.
//! * anyOf/oneOf/allOf/not failures are not `*errors.Validation` values in kube-openapi, so the
//!   real server reports them with field `<nil>`, reason `FieldValueInvalid` and message
//!   `Invalid value: "": "spec.x" must validate at least one schema (anyOf)`; this module does
//!   the same. Errors for the object root also get field `<nil>`.
//! * The best failing branch of anyOf/oneOf is picked by kube-openapi's internal "match count";
//!   here the branch with the fewest errors (first on ties) is used instead.
//! * The real server iterates Go maps, so the order of errors across sibling properties is
//!   random there; here sibling properties are visited in sorted key order (deterministic
//!   whether or not serde_json's `preserve_order` feature is on). Within one value the order
//!   follows kube-openapi: type, anyOf/oneOf/allOf/not, string, format, number, array, enum,
//!   object (additionalProperties values, then properties, then required).
//! * Values are rendered like `field.Error.ErrorBody`: strings with Go `%q`, numbers with Go
//!   `%v` (so `1e+06` for a float one million), objects/arrays as JSON.
//! * Invalid `pattern` regexes: message says `..., but pattern is invalid: <error>`, but the
//!   error text comes from the Rust `regex` crate rather than Go's `regexp`.
//! * Formats: like kube-apiserver, only the formats apiextensions supports are checked
//!   (`date-time`, `date`, `uuid`, `uuid3/4/5`, `ipv4`, `ipv6`, `cidr`, `mac`, `hostname`,
//!   `byte`, `hexcolor`, `ssn`, `bsonobjectid`, `password`); `uri`, `email`, `duration`, `isbn*`,
//!   `creditcard` and `rgbcolor` are accepted without a check here. Every other format,
//!   including `int32`, `int64`, `float` and `double`, is stripped by the real server before
//!   validation and so has no effect (no int32 range check is done; that is the real behaviour).
//! * `hostname` is checked with an approximation of go-openapi's regex.
//! * Explicit `null`: the real server drops nulls of non-nullable fields without a default while
//!   decoding (done here by [`prune_unknown`]) and replaces non-nullable nulls that have a default
//!   by the default (done by [`apply_defaults`]). A null that still reaches [`validate`] gets a
//!   type error: `Invalid value: "null": spec.x in body must be of type string: "null"`.
//!
//! * [`validate_list_sets_and_maps`] mirrors `listtype.ValidateListSetsAndMaps`: uniqueness of
//!   `x-kubernetes-list-type: set` elements and `map` keys (`Duplicate value` causes).
//! * CEL rules (`x-kubernetes-validations`) are evaluated by [`crate::cel`].
//! * [`ratchet`]: on updates, errors about values that did not change are dropped
//!   (`CRDValidationRatcheting`, on by default since 1.30).
//!
//! Not supported: `patternProperties`, `dependencies`,
//! `additionalItems`, `$ref`, and the ObjectMeta checks the server applies to `metadata` and to
//! embedded resources (apiVersion/kind required).
//!
//! Submodules: `prune`, `defaults` and `validate` are the three passes; `validate` delegates
//! string and number constraints to `scalar` and formats to `format`; `cause` and `render` build
//! the messages; `access` reads schema keywords; `regex_cache` compiles patterns once.

mod access;
mod cause;
mod defaults;
mod format;
mod listtype;
mod prune;
mod ratchet;
mod regex_cache;
mod render;
mod scalar;
mod validate;

pub use cause::Cause;
pub use defaults::apply_defaults;
pub use listtype::validate_list_sets_and_maps;
pub use prune::prune_unknown;
pub use ratchet::ratchet;
pub(crate) use render::go_quote;
pub use validate::validate;

const PRESERVE_UNKNOWN: &str = "x-kubernetes-preserve-unknown-fields";
const EMBEDDED_RESOURCE: &str = "x-kubernetes-embedded-resource";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";

/// Recursion guard: nothing below this depth is defaulted, pruned or validated.
const MAX_DEPTH: usize = 256;

#[cfg(test)]
mod tests;
