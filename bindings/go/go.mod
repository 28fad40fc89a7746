module purplerain

go 1.19
