/** `@kiln/http/client`: the API definition and the typed client, without the server (for browsers too). */
export * as Api from "./Api.ts"
export * as ApiError from "./ApiError.ts"
export * as KilnClient from "./KilnClient.ts"
