//! A table whose column widths outlive each write, as kubectl's tabwriter has them with
//! `RememberWidths`: `kubectl get -w` prints a row per change, aligned with the rows before
//! it, and a column only ever widens.

/// Column widths so far (padding included).
#[derive(Debug, Default, Clone)]
pub struct Widths {
    widths: Vec<usize>,
}

impl Widths {
    /// `rows` laid out in columns at least as wide as any before; each column as wide as its
    /// widest cell plus three spaces (at least six), the last cell of a line unpadded.
    pub fn render(&mut self, rows: &[Vec<String>]) -> String {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|c| c.replace(['\t', '\n'], " ")).collect())
            .collect();
        for row in &rows {
            let padded = row.len().saturating_sub(1);
            if self.widths.len() < padded {
                self.widths.resize(padded, 0);
            }
            for (w, cell) in self.widths.iter_mut().zip(row.iter().take(padded)) {
                *w = (*w).max(cell.chars().count() + 3).max(6);
            }
        }
        let mut out = String::new();
        for row in &rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    let width = self.widths.get(i).copied().unwrap_or(0);
                    let pad = width.saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn it_lays_out_a_table_as_the_tabwriter_does() {
        let rows = vec![
            row(&["NAME", "VERSION", "AGE"]),
            row(&["a-very-long-rollout-name-indeed", "v1", "3m"]),
            row(&["b", "v2.10.0-rc.1", "2d4h"]),
        ];
        assert_eq!(Widths::default().render(&rows), crate::cli::output::table(&rows));
    }

    #[test]
    fn later_rows_keep_the_widths_and_widen_them() {
        let mut w = Widths::default();
        assert_eq!(
            w.render(&[row(&["N", "V"]), row(&["web", "v1"])]),
            "N     V\nweb   v1\n"
        );
        assert_eq!(w.render(&[row(&["a", "v2"])]), "a     v2\n");
        assert_eq!(w.render(&[row(&["a-longer-one", "v3"])]), "a-longer-one   v3\n");
        assert_eq!(w.render(&[row(&["b", "v4"])]), "b              v4\n");
    }
}
