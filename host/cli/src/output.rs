//! How results are printed: `--output table` (the default: columns that fit the terminal),
//! `json` or `yaml` (the API's objects, for scripts). Colour only on a terminal and never with
//! `NO_COLOR`.

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use serde_json::Value;
use std::io::IsTerminal;

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Columns for people.
    Table,
    /// The API's JSON.
    Json,
    /// The API's objects as YAML.
    Yaml,
}

/// Where and how to print.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// The format asked for.
    pub format: Format,
    /// Whether to colour.
    pub color: bool,
}

impl Output {
    /// Prints in `format`, colouring only a terminal without `NO_COLOR`.
    pub fn new(format: Format) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            format,
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    /// Prints `value` as JSON or YAML (a table format prints JSON).
    pub fn value(&self, value: &Value) {
        match self.format {
            Format::Yaml => print!("{}", to_yaml(value)),
            _ => println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            ),
        }
    }

    /// Prints one object read as a whole (a definition, an entity): as `--output` asks, and
    /// as `table_as` (JSON or YAML) for the default table.
    pub fn document(&self, value: &Value, table_as: Format) {
        let format = match self.format {
            Format::Table => table_as,
            other => other,
        };
        Output { format, ..*self }.value(value);
    }

    /// Prints rows as a table, or `value` (what the rows came from) in JSON or YAML.
    pub fn rows(&self, value: &Value, headers: &[&str], rows: Vec<Vec<Cell>>) {
        if self.format != Format::Table {
            return self.value(value);
        }
        if rows.is_empty() {
            println!("(none)");
            return;
        }
        let mut table = Table::new();
        table
            .load_preset(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(headers.iter().map(|h| Cell::new(h.to_uppercase())));
        if !self.color {
            table.force_no_tty();
        }
        if !std::io::stdout().is_terminal()
            && let Some(width) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok())
        {
            table.set_width(width);
        }
        for row in rows {
            table.add_row(row);
        }
        for line in table.lines() {
            println!("{}", line.trim_end());
        }
    }

    /// A run status, green for SUCCESS and red for the bad ends (on a colour terminal).
    pub fn status(&self, status: &str) -> Cell {
        let cell = Cell::new(status);
        if !self.color {
            return cell;
        }
        match status {
            "SUCCESS" => cell.fg(Color::Green),
            "FAILURE" | "DECLINED" => cell.fg(Color::Red),
            "CANCELLED" => cell.fg(Color::Yellow),
            _ => cell.fg(Color::Cyan),
        }
    }
}

/// `value` as YAML.
pub fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_default()
}

/// A cell from a JSON field: strings bare, lists joined, nothing as empty.
pub fn cell(value: &Value) -> Cell {
    Cell::new(text(value))
}

/// A JSON field as text.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
