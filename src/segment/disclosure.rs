//! Disclosure control of the tables the segment step publishes: a cell
//! counting fewer than `min_cell` citizens is suppressed, and so are as
//! many others as it takes for none to be recomputed from its row's or
//! its column's total (complementary suppression).

use std::collections::BTreeMap;

/// A cell of a two-way table: its row, its column and its count.
type Cell = (i32, i32, i64);

/// A cell's row or column.
type Line = fn(&Cell) -> i32;

/// Which cells of a two-way table of counts (`(row, column, count)`, one
/// entry per non-empty cell) are suppressed: those below `min_cell`, then,
/// while a row or a column holds exactly one suppressed cell, its smallest
/// other cell too. A row or column with a single cell cannot hide it from
/// its total; such a total counts fewer than `min_cell` citizens itself.
pub fn suppressed_cells(cells: &[Cell], min_cell: usize) -> Vec<bool> {
    let min_cell = i64::try_from(min_cell).unwrap_or(i64::MAX);
    let mut suppressed: Vec<bool> = cells.iter().map(|c| c.2 < min_cell).collect();
    let axes: [Line; 2] = [|c| c.0, |c| c.1];
    loop {
        let mut changed = false;
        for key in axes {
            let mut lines: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
            for (i, cell) in cells.iter().enumerate() {
                lines.entry(key(cell)).or_default().push(i);
            }
            for members in lines.values() {
                if members.iter().filter(|&&i| suppressed[i]).count() != 1 {
                    continue;
                }
                let complement = members
                    .iter()
                    .filter(|&&i| !suppressed[i])
                    .min_by_key(|&&i| (cells[i].2, i));
                if let Some(&i) = complement {
                    suppressed[i] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return suppressed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No row or column has exactly one suppressed cell.
    fn protected(cells: &[Cell], suppressed: &[bool]) -> bool {
        let keys: [Line; 2] = [|c| c.0, |c| c.1];
        keys.iter().all(|key| {
            let mut counts: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
            for (cell, s) in cells.iter().zip(suppressed) {
                let entry = counts.entry(key(cell)).or_default();
                entry.0 += 1;
                entry.1 += usize::from(*s);
            }
            counts
                .values()
                .all(|(cells, hidden)| *hidden != 1 || *cells == 1)
        })
    }

    #[test]
    fn a_small_cell_is_suppressed_with_its_complements_in_its_row_and_column() {
        // Previous segment → segment: 1→1 13, 1→2 2 (small), 1→3 15,
        // 2→2 18, 2→3 12, 3→3 30.
        let cells = [
            (1, 1, 13),
            (1, 2, 2),
            (1, 3, 15),
            (2, 2, 18),
            (2, 3, 12),
            (3, 3, 30),
        ];
        let suppressed = suppressed_cells(&cells, 10);
        // 1→2 itself; 1→1, the smallest other of row 1; 2→2, of column 2;
        // then row 2 has one (2→2): 2→3; column 3 has one (2→3): 1→3 (15,
        // smaller than 30).
        assert_eq!(suppressed, [true, true, true, true, true, false]);
        assert!(protected(&cells, &suppressed));
    }

    #[test]
    fn tables_without_small_cells_are_untouched() {
        let cells = [(1, 1, 40), (1, 2, 10), (2, 2, 25)];
        assert_eq!(suppressed_cells(&cells, 10), [false; 3]);
        assert_eq!(suppressed_cells(&[], 10), Vec::<bool>::new());
    }

    #[test]
    fn two_small_cells_of_one_row_protect_each_other_there() {
        let cells = [
            (1, 1, 50),
            (1, 2, 3),
            (1, 3, 4),
            (2, 2, 40),
            (3, 3, 40),
            (2, 3, 20),
        ];
        let suppressed = suppressed_cells(&cells, 10);
        assert!(suppressed[1] && suppressed[2]);
        assert!(!suppressed[0], "row 1 already hides two cells");
        assert!(protected(&cells, &suppressed));
    }
}
