module example.com/echo-ci

go 1.26
