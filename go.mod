module github.com/wpcdb/wpcdb

go 1.26
