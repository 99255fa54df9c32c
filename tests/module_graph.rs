//! No import cycle anywhere in `src/`: not between files, and not between
//! the crate's top-level modules. A file using its own parent's items
//! (`super::Engine` in `engine/history.rs`) is how Rust modules are built
//! and is not an edge; tests (`mod tests`, `tests.rs`) are left out. The
//! scoring core imports only the catalog and the event types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;
type Graph = BTreeMap<Module, BTreeSet<Module>>;

/// Every file module under `src/` (but tests), by its path in the crate.
fn modules() -> BTreeMap<Module, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Module, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if name == "tests" {
                continue;
            }
            let mut module = prefix.to_vec();
            if path.is_dir() {
                module.push(name);
                walk(&path, &module, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || (prefix.is_empty() && name == "main") {
                continue;
            }
            if name != "mod" && name != "lib" {
                module.push(name);
            }
            out.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
    let mut out = BTreeMap::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &[], &mut out);
    out
}

/// The code of a file without its comments and its inline test module.
fn code(source: &str) -> String {
    let source = source.split("#[cfg(test)]\nmod tests").next().unwrap();
    source.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n")
}

/// The paths a file names: `crate::a::b`, `super::c`, `self::d`, with
/// `use` groups (`crate::a::{b, c::d}`) expanded one level.
fn paths(module: &Module, code: &str) -> Vec<Module> {
    let b = code.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let keyword = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|kw| b[i..].starts_with(kw.as_bytes()) && (i == 0 || !word(b[i - 1])));
        let Some(keyword) = keyword else {
            i += 1;
            continue;
        };
        let mut j = i;
        while j < b.len() && (word(b[j]) || b[j] == b':') {
            j += 1;
        }
        let mut segs: Vec<&str> = code[i..j].split("::").filter(|s| !s.is_empty()).collect();
        segs.remove(0);
        // `super` is the parent of the file's module, `mod.rs` or not.
        let mut base: Module = match keyword {
            "crate::" => Vec::new(),
            "super::" => module[..module.len().saturating_sub(1)].to_vec(),
            _ => module.clone(),
        };
        while segs.first() == Some(&"super") {
            base.pop();
            segs.remove(0);
        }
        base.extend(segs.iter().map(|s| s.to_string()));
        if b.get(j) == Some(&b'{') {
            let end = code[j..].find('}').map_or(b.len(), |k| j + k);
            for item in code[j + 1..end].split(',') {
                let item = item.split(" as ").next().unwrap().trim();
                if !item.is_empty() && item != "self" {
                    let mut p = base.clone();
                    p.extend(item.split("::").map(str::to_owned));
                    out.push(p);
                }
            }
        }
        out.push(base);
        i = j;
    }
    out
}

/// The longest prefix of `path` that is a file module.
fn resolve(modules: &BTreeMap<Module, String>, path: &Module) -> Module {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains_key(p)).unwrap_or_default()
}

/// File A uses file B, B not one of A's ancestors.
fn file_graph() -> Graph {
    let modules = modules();
    let mut graph = Graph::new();
    for (module, source) in &modules {
        let mut uses = BTreeSet::new();
        for path in paths(module, &code(source)) {
            let target = resolve(&modules, &path);
            let ancestor = target.len() <= module.len() && module[..target.len()] == target[..];
            if !ancestor {
                uses.insert(target);
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// Top-level module A uses top-level module B.
fn top_graph(files: &Graph) -> Graph {
    let mut graph = Graph::new();
    for (from, uses) in files.iter().filter(|(m, _)| !m.is_empty()) {
        for to in uses.iter().filter(|t| !t.is_empty() && t[0] != from[0]) {
            graph.entry(vec![from[0].clone()]).or_default().insert(vec![to[0].clone()]);
        }
    }
    graph
}

/// The cycles of `graph` (its strongly connected components of more than
/// one module), by Tarjan's algorithm.
fn cycles(graph: &Graph) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a Module, (usize, usize)>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a Module) {
            let n = self.index.len();
            self.index.insert(v, (n, n));
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.index[w].1.min(self.index[v].1);
                    self.index.get_mut(v).unwrap().1 = low;
                } else if self.stack.contains(&w) {
                    let low = self.index[w].0.min(self.index[v].1);
                    self.index.get_mut(v).unwrap().1 = low;
                }
            }
            if self.index[v].0 == self.index[v].1 {
                let at = self.stack.iter().position(|m| *m == v).unwrap();
                let component: Vec<Module> = self.stack.drain(at..).cloned().collect();
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk { graph, index: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

fn show(cycles: &[Vec<Module>]) -> String {
    let names = |c: &Vec<Module>| c.iter().map(|m| m.join("::")).collect::<Vec<_>>().join(" <-> ");
    cycles.iter().map(names).collect::<Vec<_>>().join("\n")
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let files = file_graph();
    assert!(files.len() > 50, "the modules were not found: {}", files.len());
    let found = cycles(&files);
    assert!(found.is_empty(), "import cycles between files:\n{}", show(&found));
}

#[test]
fn the_top_level_modules_form_layers() {
    let found = cycles(&top_graph(&file_graph()));
    assert!(found.is_empty(), "import cycles between modules:\n{}", show(&found));
}

#[test]
fn the_scoring_core_imports_only_the_catalog_and_the_event_types() {
    let top = top_graph(&file_graph());
    let engine: Vec<String> = top[&vec!["engine".to_owned()]].iter().map(|m| m[0].clone()).collect();
    assert_eq!(engine, ["catalog", "event"]);
}

#[test]
fn the_reader_finds_uses_groups_and_cycles() {
    let module = vec!["http".to_owned(), "chart".to_owned()];
    let found = paths(&module, "use super::status_page::escape_html;\nuse crate::{engine::Engine, report};");
    let found: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(found, ["http::status_page::escape_html", "engine::Engine", "report", ""]);
    let m = |s: &str| vec![s.to_owned()];
    let graph: Graph = [(m("a"), [m("b")].into()), (m("b"), [m("a")].into()), (m("c"), [m("a")].into())].into();
    assert_eq!(cycles(&graph).len(), 1);
    let graph: Graph = [(m("a"), [m("b")].into()), (m("b"), BTreeSet::new())].into();
    assert!(cycles(&graph).is_empty());
}
