//! The CLI's tables, drawn by `comfy-table`: no borders, columns padded to their widest
//! cell (display width, so `é` and `…` count one) and two spaces apart, no trailing
//! blanks. The look is `kirana plugins list`'s since its first release, which scripts
//! that cut columns by whitespace rely on.

use comfy_table::{presets::NOTHING, CellAlignment, ContentArrangement};

/// A table under construction; cells are plain strings.
pub struct Table {
    inner: comfy_table::Table,
    columns: usize,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        let mut inner = comfy_table::Table::new();
        inner
            .load_style(NOTHING)
            // Never wrap: a long path or detail stays on its line, as a pipe expects.
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(headers.iter().copied());
        let last = headers.len().saturating_sub(1);
        for (i, column) in inner.column_iter_mut().enumerate() {
            // Two spaces between columns, none before the first or after the last.
            column.set_padding((u16::from(i > 0), u16::from(i < last)));
        }
        Self {
            inner,
            columns: headers.len(),
        }
    }

    /// Right-aligns the given columns (numbers read better that way).
    pub fn right(mut self, columns: &[usize]) -> Self {
        for &c in columns {
            if let Some(column) = self.inner.column_mut(c) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        self
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.columns, String::new());
        self.inner.add_row(cells);
    }

    /// The table, one line per row after the header, each line ending in `\n`.
    pub fn render(&self) -> String {
        self.inner
            .lines()
            .map(|l| l.trim_end().to_string() + "\n")
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_and_aligns_numbers_right() {
        let mut t = Table::new(&["NAME", "REQUESTS", "NOTE"]).right(&[1]);
        t.row(vec!["catalog".into(), "12".into(), "ok".into()]);
        t.row(vec!["a".into(), "1234567".into(), String::new()]);
        assert_eq!(
            t.render(),
            "NAME     REQUESTS  NOTE\n\
             catalog        12  ok\n\
             a         1234567\n"
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["é…".into(), "x".into()]);
        assert_eq!(t.render(), "A   B\né…  x\n");
    }

    #[test]
    fn short_rows_are_filled() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["1".into()]);
        assert_eq!(t.render(), "A  B\n1\n");
    }

    #[test]
    fn long_cells_are_never_wrapped() {
        let long = "x".repeat(300);
        let mut t = Table::new(&["A", "DETAIL"]);
        t.row(vec!["1".into(), long.clone()]);
        assert_eq!(t.render(), format!("A  DETAIL\n1  {long}\n"));
    }

    #[test]
    fn a_lone_column_has_no_padding() {
        let mut t = Table::new(&["A"]).right(&[0]);
        t.row(vec!["long".into()]);
        assert_eq!(t.render(), "   A\nlong\n");
    }
}
