/** One PostgreSQL for the whole test run (unless `KILN_TEST_DATABASE_URL` names one). */
export { globalSetup as default } from "../src/testing.ts"
