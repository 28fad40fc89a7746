module purplerain-example

go 1.19

require purplerain v0.0.0

// The binding from this checkout; no download involved.
replace purplerain => ../../bindings/go
