export * as Api from "./Api.ts"
export * as ApiError from "./ApiError.ts"
export * as KilnClient from "./KilnClient.ts"
export * as KilnHttp from "./KilnHttp.ts"
