//! CEL validation rules (`x-kubernetes-validations`) of custom resources, as kube-apiserver's
//! apiextensions-apiserver evaluates them, on top of the `cel` crate (cel-rust):
//!
//! * [`check_crd`]: on CRD create/update, every rule is checked (its fields), compiled
//!   (parse + type check against the schema) and its cost estimated; a rule that does not
//!   compile is a 422, and so is a rule whose estimated cost exceeds [`RULE_COST_LIMIT`] or a
//!   schema whose rules together exceed [`TOTAL_COST_LIMIT`], with kube-apiserver's messages.
//! * [`Validator`]: the compiled rules of a served version, evaluated on every create, update
//!   and status update of its custom resources.
//!
//! Submodules: `decl` (schema → CEL declaration types with size bounds), `types` and `check`
//! (type checking with cel-go's overloads), `cost` (cel-go's cost estimator with Kubernetes'
//! function costs), `library` (the runtime functions), `value` (data → CEL values), `compile`,
//! `validator` (runtime), `crd` (CRD write checks), `fieldpath` (rule `fieldPath`).

mod check;
mod compile;
mod cost;
mod crd;
mod decl;
pub mod expr;
mod fieldpath;
mod library;
mod types;
mod validator;
mod value;

pub use crd::{check_crd, rule_costs, RuleCost, RULE_COST_LIMIT, TOTAL_COST_LIMIT};
pub use validator::Validator;

const INT_OR_STRING: &str = "x-kubernetes-int-or-string";
const EMBEDDED_RESOURCE: &str = "x-kubernetes-embedded-resource";
/// Recursion guard for schemas.
const MAX_DEPTH: usize = 256;

#[cfg(test)]
mod tests;
