// Command consumer is the end-to-end suite's workload: every two seconds it reads database
// credentials from a mounted Secret and logs in to PostgreSQL with them, printing one line per
// attempt ("login ok user=... version=..." or "login failed ..."), never the password. With the
// argument --env it reads them once, at start, from the environment (DB_USERNAME, DB_PASSWORD,
// DB_HOST, DB_PORT), as an application configured by environment variables does.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func read(dir, key string) string {
	b, _ := os.ReadFile(filepath.Join(dir, key)) //nolint:gosec // the consumer reads its own mounted Secret
	return strings.TrimSpace(string(b))
}

func main() {
	dir := "/etc/db"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	fromEnv := dir == "--env"
	envUser, envPW, envHost, envPort := os.Getenv("DB_USERNAME"), os.Getenv("DB_PASSWORD"), os.Getenv("DB_HOST"), os.Getenv("DB_PORT")
	for {
		user, pw, host, port := envUser, envPW, envHost, envPort
		if !fromEnv {
			user, pw, host, port = read(dir, "username"), read(dir, "password"), read(dir, "host"), read(dir, "port")
		}
		cfg, err := pgx.ParseConfig("sslmode=disable connect_timeout=3 dbname=postgres")
		if err == nil {
			cfg.Host, cfg.User, cfg.Password = host, user, pw
			_, _ = fmt.Sscanf(port, "%d", &cfg.Port)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err == nil {
				_ = conn.Close(ctx)
				fmt.Printf("login ok user=%s\n", user)
			} else {
				fmt.Printf("login failed user=%s\n", user)
			}
			cancel()
		}
		time.Sleep(2 * time.Second)
	}
}
