module example.com/echo-server

go 1.26
