(function () {
  "use strict";
  // The report works without this script (every row shown, in the scorecard's order); with it, the
  // tables sort by a click on a column head and the toolbar filters rows by words and status. Only
  // the page's own elements are read: no data is ever evaluated, fetched or written as markup.
  var doc = document;
  var toolbar = doc.getElementById("toolbar");
  if (!toolbar) {
    return;
  }

  // --- rows of one indicator: its name opens the group; copy it into the rows below, so that a
  // row keeps its name when sorted away from its group and is found by a search for it
  Array.prototype.forEach.call(doc.querySelectorAll("table.sortable"), function (table) {
    var name = null;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var cell = row.querySelector("td.ind");
      if (!cell) {
        return;
      }
      if (row.classList.contains("first")) {
        name = cell;
      } else if (name && !cell.firstChild) {
        Array.prototype.forEach.call(name.childNodes, function (node) {
          cell.appendChild(node.cloneNode(true));
        });
      }
    });
  });

  // --- sorting --------------------------------------------------------------------------------
  // a cell sorts by its data-sort value, else by the number its text starts with (after a change's
  // arrow: "▲ +3.1%", "1,234.5 µg/m³"), else by its text; empty and "—" cells sort last
  var LEADING_NUMBER = /^[\u25B2\u25BC=\s]*([+-]?[0-9][0-9,]*(?:\.[0-9]+)?)/;

  function sortKey(cell) {
    if (!cell) {
      return null;
    }
    var raw = cell.getAttribute("data-sort");
    if (raw !== null) {
      if (raw === "") {
        return null;
      }
      var number = Number(raw);
      return isNaN(number) ? raw.toLowerCase() : number;
    }
    var text = cell.textContent.trim();
    if (text === "" || text === "\u2014") {
      return null;
    }
    var match = LEADING_NUMBER.exec(text);
    return match ? Number(match[1].replace(/,/g, "")) : text.toLowerCase();
  }

  function compare(a, b) {
    if (typeof a === "number" && typeof b === "number") {
      return a - b;
    }
    return String(a).localeCompare(String(b), doc.documentElement.lang || undefined);
  }

  function sortTable(table, column, head) {
    var body = table.tBodies[0];
    var descending = head.getAttribute("aria-sort") === "ascending";
    var rows = Array.prototype.slice.call(body.rows).map(function (row, index) {
      return { row: row, key: sortKey(row.cells[column]), index: index };
    });
    rows.sort(function (x, y) {
      if (x.key === null || y.key === null) {
        // blanks last in either direction, in their current order
        return x.key === null && y.key === null ? x.index - y.index : x.key === null ? 1 : -1;
      }
      var order = compare(x.key, y.key);
      return (descending ? -order : order) || x.index - y.index;
    });
    rows.forEach(function (item) {
      body.appendChild(item.row);
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    head.setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.classList.add("sorted");
  }

  Array.prototype.forEach.call(doc.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (head, column) {
      if (head.classList.contains("nosort")) {
        return;
      }
      var button = doc.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (head.firstChild) {
        button.appendChild(head.firstChild);
      }
      head.appendChild(button);
      button.addEventListener("click", function () {
        sortTable(table, column, head);
      });
    });
  });

  // --- filtering --------------------------------------------------------------------------------
  var search = doc.getElementById("search");
  var boxes = Array.prototype.slice.call(toolbar.querySelectorAll("input[name=status]"));
  var shown = doc.getElementById("shown");
  // what the filters show or hide: elements marked .f, and every row of a table marked .ft; the
  // statuses of an item are its own data-status, or its table's
  var items = Array.prototype.slice.call(doc.querySelectorAll(".f, table.ft > tbody > tr")).map(function (node) {
    var holder = node.closest("[data-status]");
    return {
      node: node,
      text: node.textContent.toLowerCase(),
      statuses: (holder ? holder.getAttribute("data-status") : "").split(" "),
      counted: node.tagName === "TR"
    };
  });
  var total = items.filter(function (item) {
    return item.counted;
  }).length;
  var groups = Array.prototype.slice.call(doc.querySelectorAll(".fgroup"));

  function apply() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var wanted = {};
    var all = true;
    boxes.forEach(function (box) {
      wanted[box.value] = box.checked;
      all = all && box.checked;
    });
    var count = 0;
    items.forEach(function (item) {
      var byWords = words.every(function (word) {
        return item.text.indexOf(word) !== -1;
      });
      var byStatus = all || item.statuses.some(function (status) {
        return wanted[status];
      });
      item.node.hidden = !(byWords && byStatus);
      if (item.counted && !item.node.hidden) {
        count += 1;
      }
    });
    groups.forEach(function (group) {
      var members = group.querySelectorAll(".f, table.ft > tbody > tr");
      var visible = Array.prototype.some.call(members, function (node) {
        return !node.hidden;
      });
      group.hidden = members.length > 0 && !visible;
    });
    shown.textContent = String(count) + " / " + String(total);
    doc.body.classList.toggle("filtered", words.length > 0 || !all);
  }

  search.addEventListener("input", apply);
  boxes.forEach(function (box) {
    box.addEventListener("change", apply);
  });
  toolbar.hidden = false;
  apply();
})();
