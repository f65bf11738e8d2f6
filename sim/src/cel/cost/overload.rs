//! The standard overloads the cost estimator prices by their operands' sizes (cel-go's
//! `sizeEstimate`-based cases of `checker/cost.go`'s `functionCost`).

use super::{fixed, Est, Node, REGEX_STRING_LENGTH, STRING_TRAVERSAL, UNKNOWN};

/// The cost (and result size, where it is known) of the standard overloads CEL prices by their
/// operands' sizes; None for those that cost 1 plus their arguments.
pub(super) fn overload_cost(
    id: &str,
    target: Option<&Node>,
    args: &[Node],
    arg_costs: &[Est],
    arg_sum: Est,
) -> Option<(Est, Option<Est>)> {
    let size_of = |n: &Node| n.size.unwrap_or(UNKNOWN);
    match id {
        "string_to_bytes" if args.len() == 1 => {
            let sz = size_of(&args[0]);
            let size = Est {
                min: sz.min,
                max: sz.max.saturating_mul(4),
            };
            Some((sz.by(STRING_TRAVERSAL).add(arg_sum), Some(size)))
        }
        "bytes_to_string" if args.len() == 1 => {
            let sz = size_of(&args[0]);
            let size = Est {
                min: sz.min / 4,
                max: sz.max,
            };
            Some((sz.by(STRING_TRAVERSAL).add(arg_sum), Some(size)))
        }
        "starts_with_string" | "ends_with_string" if args.len() == 1 => {
            Some((size_of(&args[0]).by(STRING_TRAVERSAL).add(arg_sum), None))
        }
        "in_list" if args.len() == 2 => Some((size_of(&args[1]).by(1.0).add(arg_sum), None)),
        "matches_string" => {
            let (Some(t), 1) = (target, args.len()) else {
                return None;
            };
            let s = size_of(t).add(fixed(1)).by(STRING_TRAVERSAL);
            let r = size_of(&args[0]).by(REGEX_STRING_LENGTH);
            Some((s.mul(r).add(arg_sum), None))
        }
        "contains_string" => {
            let (Some(t), 1) = (target, args.len()) else {
                return None;
            };
            let s = size_of(t).by(STRING_TRAVERSAL);
            let sub = size_of(&args[0]).by(STRING_TRAVERSAL);
            Some((s.mul(sub).add(arg_sum), None))
        }
        "logical_and" | "logical_or" => {
            let (l, r) = (arg_costs[0], arg_costs[1]);
            Some((
                Est {
                    min: l.min,
                    max: l.add(r).max,
                },
                None,
            ))
        }
        "equals"
        | "not_equals"
        | "less_string"
        | "greater_string"
        | "less_equals_string"
        | "greater_equals_string"
        | "less_bytes"
        | "greater_bytes"
        | "less_equals_bytes"
        | "greater_equals_bytes" => {
            let smallest = size_of(&args[0]).max.min(size_of(&args[1]).max);
            let min = u64::from(smallest > 0);
            Some((Est { min, max: smallest }.by(STRING_TRAVERSAL).add(arg_sum), None))
        }
        _ => None,
    }
}
