// Package report holds what every command's JSON report shares: the
// version of their schema (docs/json.md).
package report

// Schema is the version of every JSON report cgpeak prints or exports. A
// change that would make an old reader misread a report (a field changing
// meaning or unit, or going away) increases it; fields may be added without.
const Schema = 1
