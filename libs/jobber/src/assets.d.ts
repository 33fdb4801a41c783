declare module "*.c" {
  const source: string;
  export default source;
}
