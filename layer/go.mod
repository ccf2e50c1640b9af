module lambdachaos

go 1.23
