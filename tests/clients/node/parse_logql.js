// Parse LogQL with Grafana's own grammar (@grafana/lezer-logql, the one Grafana's query editor
// uses) and report where it found syntax errors.
//
// usage: node parse_logql.js < queries.json
//   stdin:  a JSON array of LogQL strings;
//   stdout: a JSON array, one object per query in the same order:
//           {"query": "...", "errors": [{"from": 12, "to": 13, "text": "..."}]},
//           `errors` listing the grammar's error nodes (empty when the query parses cleanly).
// Lezer recovers from errors instead of failing, so an error is an error node in the tree.
'use strict'

const { parser } = require('@grafana/lezer-logql')

function errorsOf (query) {
  const errors = []
  parser.parse(query).iterate({
    enter (node) {
      if (node.type.isError) {
        errors.push({ from: node.from, to: node.to, text: query.slice(Math.max(0, node.from - 10), node.to + 10) })
      }
    }
  })
  return errors
}

function main () {
  const queries = JSON.parse(require('fs').readFileSync(0, 'utf8'))
  if (!Array.isArray(queries) || !queries.every((q) => typeof q === 'string')) {
    throw new Error('stdin must be a JSON array of strings')
  }
  process.stdout.write(JSON.stringify(queries.map((query) => ({ query, errors: errorsOf(query) }))))
}

main()
