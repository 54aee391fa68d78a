package printers

// CheckCellTypes lets the external catalog test check cells against
// columns.
var CheckCellTypes = checkCellTypes
